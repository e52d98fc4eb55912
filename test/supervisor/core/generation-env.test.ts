import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../supervisor/config/config.ts';
import { notifySocketPath } from '../../../supervisor/core/generation-env.ts';

function config(controlSocket: string, readiness = 'auto') {
  return validateConfig({ name: 'shop', command: 'gunicorn app:app', 'control-socket': controlSocket, readiness }, 'test', '/srv');
}

function recorder() {
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  return { log, lines };
}

describe('notifySocketPath', () => {
  it('is <runtime dir>/notify/<instance>-<generation>.sock, beside the control socket', () => {
    const { log, lines } = recorder();
    expect(notifySocketPath(config('/run/baton/shop.sock'), 12, log)).toBe('/run/baton/notify/shop-12.sock');
    expect(lines).toEqual([]);
  });

  it('too long for sun_path: an ERR_CONFIG for readiness notify, otherwise a warning and no socket', () => {
    const deep = `/run/${'d'.repeat(100)}/shop.sock`;
    expect(() => notifySocketPath(config(deep, 'notify'), 3, recorder().log)).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG',
        message: expect.stringMatching(/^readiness: notify needs a NOTIFY_SOCKET, but its path .*shop-3\.sock is 124 bytes, and a Unix socket path holds at most 107: set BATON_RUNTIME_DIR/),
      }),
    );
    const { log, lines } = recorder();
    expect(notifySocketPath(config(deep), 3, log)).toBeUndefined();
    expect(lines.join('')).toContain('generation 3 gets no NOTIFY_SOCKET');
  });
});
