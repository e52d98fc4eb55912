// `baton top` in a real pseudo-terminal (util-linux `script` gives it one): it draws the live
// generations in place on the alternate screen, refreshes, and quits on `q` with the screen restored.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS } from '../helpers/baton.ts';
import { startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

const SCRIPT = '/usr/bin/script';
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

describe('baton top', () => {
  it.skipIf(!fs.existsSync(SCRIPT))('shows the generations live in a terminal and quits on q', async () => {
    const baton = new BatonProcess(httpConfig(fixture('memory-app.ts'), { memory: { interval: '250ms' } }));
    await baton.active(1);
    const load = startLoad({ port: await baton.port() }, { keepAlive: 2, newConnection: 0 });
    const command = [process.execPath, ...NODE_FLAGS, BIN, 'top', '--every', '300', '--control-socket', baton.socketPath].map(quote).join(' ');
    const child = spawn(SCRIPT, ['-q', '-e', '-c', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm', COLUMNS: '160', LINES: '40' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20_000;
      // Two frames with figures: the second has rates (CPU %) the first cannot have.
      while (!(/\x1b\[H[\s\S]*\x1b\[H/.test(out) && /\n1 +\d+ +active +\S+ +[\d.]+ +[\d.]+M +[\d.]+M/.test(out.replace(/\x1b\[K/g, '')))) {
        if (Date.now() > deadline) throw new Error(`no frame with figures; got ${JSON.stringify(out.slice(-800))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out).toContain('\x1b[?1049h'); // the alternate screen
      expect(out).toMatch(/baton top — instance test — .* requests\/s/);
      child.stdin.write('q');
      expect(await exited).toBe(0);
      expect(out).toContain('\x1b[?1049l'); // restored
    } finally {
      child.kill('SIGKILL');
      await load.stop();
    }
  });
});
