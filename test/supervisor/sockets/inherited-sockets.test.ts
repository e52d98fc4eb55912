import { describe, expect, it } from 'vitest';
import { takeInheritedSockets, UPGRADE_ENV, UPGRADE_VERSION } from '../../../supervisor/sockets/inherited-sockets.ts';

describe('takeInheritedSockets', () => {
  it('finds nothing without the variables', () => {
    expect(takeInheritedSockets({})).toEqual({ sockets: [] });
  });

  it('leaves sockets meant for another process alone, and takes the variables out either way', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b', LISTEN_PID: '1', KEEP: 'x' };
    expect(takeInheritedSockets(env, 4242)).toEqual({ sockets: [] });
    expect(env).toEqual({ KEEP: 'x' });
  });

  it('says what is wrong with LISTEN_FDS', () => {
    expect(() => takeInheritedSockets({ LISTEN_FDS: 'two', LISTEN_PID: '7' }, 7)).toThrow(
      expect.objectContaining({ code: 'ERR_LISTENER', message: "LISTEN_FDS must be a count of descriptors, got 'two'" }),
    );
  });

  it('refuses a hand-over it cannot read', () => {
    expect(() => takeInheritedSockets({ [UPGRADE_ENV]: '{not json' })).toThrow(expect.objectContaining({ code: 'ERR_LISTENER', message: expect.stringContaining('is not the JSON a predecessor supervisor writes') }));
    expect(() => takeInheritedSockets({ [UPGRADE_ENV]: JSON.stringify({ version: UPGRADE_VERSION + 1 }) })).toThrow(
      expect.objectContaining({ code: 'ERR_UPGRADE_FAILED', message: `${UPGRADE_ENV} is version ${UPGRADE_VERSION + 1}; this Baton reads version ${UPGRADE_VERSION}: stop and start it instead` }),
    );
  });
});
