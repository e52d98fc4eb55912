/**
 * bin/baton's V8 settings for the supervisor: `baton run` starts itself again in place
 * (process.execve) with them, so the pid systemd, the control socket and the generations know is
 * the one that runs, and systemd's sockets stay open across it; BATON_SUPERVISOR_NODE_FLAGS
 * replaces them, and a flag given to node wins.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { freePort, get } from '../helpers/ports.ts';

afterEach(cleanupAll);

const SETTINGS = /var SUPERVISOR_FLAGS = \[([^\]]*)\]/.exec(fs.readFileSync(BIN, 'utf8'))?.[1]?.match(/--[^']+/g) ?? [];
const canExec = typeof (process as { execve?: unknown }).execve === 'function';
const ACTIVATE = '/usr/bin/systemd-socket-activate';

/** The supervisor's command line as the kernel has it now. */
function argv(pid: number): string[] {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

describe.skipIf(!canExec)(canExec ? 'baton run with the supervisor V8 settings' : `baton run with the supervisor V8 settings — skipped: Node ${process.version} has no process.execve (22.15+)`, () => {
  it('runs with them under the pid it was started with: status and the log name it, and the generation, whose exec shim checks its parent pid, serves', async () => {
    expect(SETTINGS.length).toBeGreaterThan(0);
    const b = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await b.active(1);
    const status = await b.status();
    expect(status.pid).toBe(b.pid);
    const args = argv(b.pid);
    expect(args).toEqual(expect.arrayContaining(SETTINGS));
    // Then the node flags the caller gave, then the script and its arguments, as they were.
    expect(args.slice(args.indexOf(SETTINGS.at(-1)!) + 1)).toEqual(expect.arrayContaining([BIN, 'run', '--config', b.configPath]));
    expect(args.indexOf(BIN)).toBeGreaterThan(args.indexOf(SETTINGS.at(-1)!));
    expect(b.lines.filter((l) => typeof l.pid === 'number').every((l) => l.pid === b.pid)).toBe(true);
    expect((await get({ port: await b.port() })).status).toBe(200);
  });

  it('BATON_SUPERVISOR_NODE_FLAGS replaces them; empty, none is added and nothing is re-executed', async () => {
    const one = new BatonProcess(httpConfig(fixture('http-app.ts'), { name: 'one' }), [], { BATON_SUPERVISOR_NODE_FLAGS: '--max-semi-space-size=2' });
    const none = new BatonProcess(httpConfig(fixture('http-app.ts'), { name: 'none' }), [], { BATON_SUPERVISOR_NODE_FLAGS: '' });
    await Promise.all([one.active(1), none.active(1)]);
    expect(argv(one.pid)).toContain('--max-semi-space-size=2');
    for (const flag of SETTINGS) expect(argv(one.pid)).not.toContain(flag);
    expect(argv(none.pid).slice(1, argv(none.pid).indexOf(BIN))).toEqual(['--disable-warning=ExperimentalWarning']);
  });

  it.skipIf(!fs.existsSync(ACTIVATE))(`keeps systemd's sockets across the restart: socket activation still serves on them${fs.existsSync(ACTIVATE) ? '' : ` (skipped: no ${ACTIVATE})`}`, async () => {
    const port = await freePort();
    const b = new BatonProcess(httpConfig(fixture('http-app.ts')), [], {}, [ACTIVATE, '-l', `127.0.0.1:${port}`, '--fdname=http', '-EBATON_RUNTIME_DIR', '-EBATON_STATS_DIR', '-EPATH']);
    const deadline = Date.now() + 10_000;
    while (!b.stderr.join('').includes('Listening on ')) {
      if (Date.now() > deadline) throw new Error(`systemd-socket-activate did not listen: ${b.stderr.join('')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    // The activator starts Baton on the first connection, which waits in the unit socket's backlog.
    expect((await get({ port })).status).toBe(200);
    expect(argv(b.pid)).toEqual(expect.arrayContaining(SETTINGS));
    expect((await b.status()).listeners).toEqual([{ name: 'http', address: `127.0.0.1:${port}`, fd: 3, from: 'systemd' }]);
  });

  it('a setting given to node itself wins over the same one of bin/baton', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts')), [], { NODE_OPTIONS: '--max-semi-space-size=4' });
    await b.active(1);
    const args = argv(b.pid);
    expect(args.filter((a) => a.startsWith('--max-semi-space-size'))).toEqual([]);
    expect(args).toEqual(expect.arrayContaining(SETTINGS.filter((f) => !f.startsWith('--max-semi-space-size'))));
    expect(path.basename(args[0]!)).toMatch(/^node/);
  });

  it('a setting given to node is matched by its whole name: one whose name another extends is still added', async () => {
    expect(SETTINGS).toEqual(expect.arrayContaining(['--invocation-count-for-maglev=100000', '--invocation-count-for-maglev-osr=100000']));
    // On node's command line: NODE_OPTIONS takes no V8 flag of this kind. sh execs node (same pid).
    const b = new BatonProcess(httpConfig(fixture('http-app.ts')), [], {}, ['sh', '-c', 'exec "$0" --invocation-count-for-maglev-osr=500 "$@"']);
    await b.active(1);
    const args = argv(b.pid);
    expect(args).toContain('--invocation-count-for-maglev-osr=500');
    expect(args).toContain('--invocation-count-for-maglev=100000');
    expect(args).not.toContain('--invocation-count-for-maglev-osr=100000');
  });
});
