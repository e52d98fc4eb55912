import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { NoServiceManager, serviceManagerFrom, SystemdNotifier } from '../../../supervisor/systemd/service-manager.ts';

function recordingLog(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, m: string) => warnings.push(m), info() {}, debug() {}, error() {} } as unknown as Logger;
  return { log, warnings };
}

describe('serviceManagerFrom', () => {
  it('is the no-op manager without NOTIFY_SOCKET', () => {
    expect(serviceManagerFrom({}, recordingLog().log)).toBeInstanceOf(NoServiceManager);
  });

  it('takes systemd’s variables out of the environment and passes on all but WATCHDOG_PID', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '0', WATCHDOG_PID: '1', FDSTORE: '4', PATH: '/bin' };
    const manager = serviceManagerFrom(env, recordingLog().log);
    expect(manager).toBeInstanceOf(SystemdNotifier);
    expect(env).toEqual({ PATH: '/bin' });
    expect(manager.env).toEqual({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '0', FDSTORE: '4' });
    manager.close();
  });

  it('logs one warning while the manager cannot be reached, and never throws', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-sm-'));
    const { log, warnings } = recordingLog();
    const manager = serviceManagerFrom({ NOTIFY_SOCKET: path.join(dir, 'gone.sock') }, log);
    manager.ready('generation 1 active');
    manager.status('still');
    manager.stopping();
    expect(warnings).toEqual(['cannot notify the service manager']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
