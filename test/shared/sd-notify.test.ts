import { describe, expect, it } from 'vitest';
import { parseSdNotify } from '../../shared/sd-notify.ts';

describe('parseSdNotify', () => {
  it("reads gunicorn's boot message: ready with a status", () => {
    expect(parseSdNotify('READY=1\nSTATUS=Gunicorn arbiter booted')).toEqual({
      ready: true,
      stopping: false,
      reloading: false,
      status: 'Gunicorn arbiter booted',
      ignored: [],
    });
  });

  it('keeps everything after the first = of a status, and the last status of a message', () => {
    expect(parseSdNotify('STATUS=a=b\nSTATUS=queue=3, busy=1').status).toBe('queue=3, busy=1');
    expect(parseSdNotify('STATUS=').status).toBe('');
  });

  it('reads STOPPING, RELOADING and MAINPID, and takes only "1" as a flag', () => {
    expect(parseSdNotify('STOPPING=1\nRELOADING=1\nMAINPID=4242')).toMatchObject({ stopping: true, reloading: true, mainPid: '4242' });
    expect(parseSdNotify('READY=0\nSTOPPING=yes')).toMatchObject({ ready: false, stopping: false });
  });

  it('lists unknown keys and malformed lines as ignored, and skips blank lines', () => {
    expect(parseSdNotify('WATCHDOG=1\n\nnonsense\n=1\nERRNO=2\nREADY=1\n')).toEqual({
      ready: true,
      stopping: false,
      reloading: false,
      ignored: ['WATCHDOG', 'nonsense', '=1', 'ERRNO'],
    });
  });
});
