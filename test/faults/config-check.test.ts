import { execa } from 'execa';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS, ROOT } from '../helpers/baton.ts';

const dirs: string[] = [];
afterEach(async () => {
  await cleanupAll();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** `baton check --config` on `text`, written to a fresh directory. */
async function check(text: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-check-'));
  dirs.push(dir);
  const file = path.join(dir, 'baton.yaml');
  fs.writeFileSync(file, text);
  const runtime = path.join(dir, 'run');
  const r = await execa(process.execPath, [...NODE_FLAGS, BIN, 'check', '--config', file], { reject: false, timeout: 60_000, env: { BATON_RUNTIME_DIR: runtime } });
  // Nothing was started: no runtime directory, no socket, no segment.
  expect(fs.existsSync(runtime)).toBe(false);
  return { ...r, file, lines: r.stderr.split('\n').filter(Boolean) };
}

const node = JSON.stringify(process.execPath);

describe('baton check --config FILE', () => {
  it('prints every problem with its key and line, and exits 2', async () => {
    const r = await check(['name: shop', 'command: [node, app.js]', 'drain-signal: SIGFOO', 'bogus: 1', 'restart:', '  max-failures: zero', ''].join('\n'));
    expect(r.exitCode).toBe(2);
    expect(r.lines).toEqual([
      expect.stringMatching(new RegExp(`^${r.file}:3: drain-signal: unknown signal 'SIGFOO'`)),
      `${r.file}:4: bogus: unknown key`,
      expect.stringMatching(new RegExp(`^${r.file}:6: restart\\.max-failures: `)),
    ]);
    expect(r.stdout).toBe(`${r.file}: 3 problems`);
  });

  it('finds overlapping listeners, a command that is not there and a missing cwd', async () => {
    const r = await check(['command: [./no-such-program]', 'listeners:', '  - address: 0.0.0.0:18482', '  - address: 127.0.0.1:18482', ''].join('\n'));
    expect(r.exitCode).toBe(2);
    expect(r.lines[0]).toMatch(new RegExp(`^${r.file}:4: listeners\\[1\\]\\.address: '127\\.0\\.0\\.1:18482' overlaps listener`));
    const r2 = await check(['command: [./no-such-program]', 'cwd: /nonexistent/x', ''].join('\n'));
    expect(r2.lines).toEqual([`${r2.file}:2: cwd: the working directory /nonexistent/x does not exist`]);
    const r3 = await check(['command: [./no-such-program]', ''].join('\n'));
    expect(r3.lines).toEqual([`${r3.file}:1: command: ${path.join(path.dirname(r3.file), 'no-such-program')} is not an executable file`]);
  });

  it('a listener another process holds is a problem; one the running instance of that name holds is not', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const r = await check([`command: [${node}, app.js]`, 'listeners:', `  - address: 127.0.0.1:${port}`, ''].join('\n'));
      expect(r.exitCode).toBe(2);
      expect(r.lines).toEqual([`${r.file}:3: listeners[0].address: cannot bind 127.0.0.1:${port}: EADDRINUSE: another process holds it (no running instance of this name does)`]);
    } finally {
      holder.close();
    }
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const held = await baton.port();
    const r = await check([`name: test`, `control-socket: ${baton.socketPath}`, `command: [${node}, app.js]`, 'listeners:', `  - address: 127.0.0.1:${held}`, ''].join('\n'));
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`${r.file}: ok`);
  });

  it("runs the child's own check: the proxy's, and a check-command, placing what they report at its line", async () => {
    const proxy = await check(
      [`command: [${node}, --disable-warning=ExperimentalWarning, ${path.join(ROOT, 'proxy/main.ts')}, --config, baton.yaml]`, 'listeners:', '  - { name: web, address: 127.0.0.1:0 }', 'app:', '  listeners:', '    web:', '      protocol: http', '      routes:', '        - match: { prefix: / }', '          cluster: nope', '  clusters: {}', ''].join('\n'),
    );
    expect(proxy.exitCode).toBe(2);
    expect(proxy.lines).toEqual([`${proxy.file}:10: app.listeners.web.routes[0].cluster: no cluster named 'nope'`]);
    const custom = await check([`command: [${node}, app.js]`, `check-command: [sh, -c, 'echo "  app.port: must be a number" >&2; exit 3']`, 'app:', '  port: eighty', ''].join('\n'));
    expect(custom.exitCode).toBe(2);
    expect(custom.lines).toEqual([`${custom.file}:4: app.port: must be a number`]);
    const fine = await check([`command: [${node}, app.js]`, 'check-command: [sh, -c, "test -n \\"$BATON_CONFIG\\""]', ''].join('\n'));
    expect(fine.exitCode).toBe(0);
  });
});
