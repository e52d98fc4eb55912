import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../../supervisor/cli/client-commands.ts';

describe('formatStatus', () => {
  it('shows where each socket came from and the generations with their sd_notify status', () => {
    const text = formatStatus({
      instance: 'web',
      pid: 4232,
      uptimeMs: 7900,
      active: 2,
      stopping: false,
      listeners: [
        { name: 'http', address: '127.0.0.1:8080', fd: 3, from: 'systemd' },
        { name: 'admin', address: '127.0.0.1:9901', fd: 23 },
      ],
      generations: [
        { generation: 1, pid: 4255, state: 'draining', startedAt: 0, uptimeMs: 7900, connections: 1, sdk: true },
        { generation: 2, pid: 4497, state: 'active', startedAt: 0, uptimeMs: 441, connections: null, sdk: false, status: 'Gunicorn arbiter booted' },
      ],
    } as Parameters<typeof formatStatus>[0]);
    expect(text).toBe(
      [
        'instance web (supervisor pid 4232, up 7.9s)',
        'listeners:',
        '  http 127.0.0.1:8080 (from systemd)',
        '  admin 127.0.0.1:9901',
        '',
        'GEN  PID   STATE     UPTIME  CONNS  EXIT  STATUS',
        '1    4255  draining  7.9s    1',
        '2    4497  active    441ms   -            Gunicorn arbiter booted',
        '',
      ].join('\n'),
    );
  });
});
