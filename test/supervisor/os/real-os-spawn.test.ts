import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { realOs } from '../../../supervisor/os/real-os.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-spawn-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

it('a spawn that throws leaves no socketpair and no notify socket behind', () => {
  const before = openFds();
  for (let i = 0; i < 20; i++) {
    const notifySocket = path.join(dir, `n${i}.sock`);
    // A NUL byte in an argument makes child_process.spawn throw before any process exists.
    expect(() =>
      realOs.spawn({ command: process.execPath, args: ['-e', 'bad\0arg'], cwd: dir, env: {}, listenFds: [], notifySocket }),
    ).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(fs.existsSync(notifySocket)).toBe(false);
  }
  // A leak leaves at least one descriptor per spawn (20); the test worker's own may come and go meanwhile.
  expect(openFds()).toBeLessThan(before + 10);
});
