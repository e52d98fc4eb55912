import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { workerOptions } from '../../../supervisor/core/generation-options.ts';
import { NoStats } from '../../../supervisor/core/stats-sink.ts';
import { parseDevArgs } from '../../../supervisor/dev/command.ts';
import { devConfig } from '../../../supervisor/dev/dev-config.ts';
import { firstSpawn } from '../../../supervisor/dev/early-start.ts';
import { shapeEnv, wakeEnv } from '../../../supervisor/os/standby-pool.ts';
import type { SpawnSpec } from '../../../supervisor/os/os.ts';
import type { FdStore } from '../../../supervisor/sockets/fd-store.ts';
import { ROOT } from '../../helpers/baton.ts';
import { FakeOs } from '../os/fake-os.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-early-'));
fs.writeFileSync(path.join(dir, 'app.js'), 'export {};\n');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The spawn the dev runner's supervisor makes for generation 1, as generation-options.ts builds it. */
function realFirstSpawn(args: string[]): SpawnSpec {
  const parsed = parseDevArgs(args);
  const config = devConfig(parsed.command, parsed.values, process.cwd());
  const ctx = { os: new FakeOs(), log: pino({ level: 'silent' }), store: {} as FdStore, sink: new NoStats() };
  return workerOptions(config, [], 1, 0, 1, ctx).spawn;
}

/** What StandbyPool compares (supervisor/os/standby-pool.ts shapeOf), but for the preload's files. */
const shape = (s: SpawnSpec) => ({ command: s.command, args: s.args, cwd: s.cwd, env: shapeEnv(s.env), workers: s.env.BATON_WORKERS, listenFds: s.listenFds, standby: s.standby });

describe('firstSpawn', () => {
  it.each([
    ['a JavaScript entry', [path.join(dir, 'app.js'), '--port', '3000']],
    ['a TypeScript entry (tsx)', [path.join(ROOT, 'test/fixtures/dev-app/server.ts')]],
    ['a node command after --', ['--debounce', '50', '--', 'node', path.join(dir, 'app.js')]],
    ['a drain timeout of its own (the paced-close span follows it)', ['--drain-timeout', '4s', path.join(dir, 'app.js')]],
  ])('guesses exactly the spawn of generation 1 for %s, so its standby is taken', (_what, args) => {
    const guess = firstSpawn(args) as SpawnSpec;
    expect(guess).toBeDefined();
    expect(shape(guess)).toEqual(shape(realFirstSpawn(args)));
    // What it is handed on waking too: it is woken with the guess before the supervisor is up.
    expect(wakeEnv(guess.env)).toEqual(wakeEnv(realFirstSpawn(args).env));
    expect(guess.onLine).toBeTypeOf('function'); // the runner pipes output; the pool compares that too
    expect(guess.notifySocket).toBeUndefined(); // bound on waking, like any standby's
  });

  it.each([
    ['--listen (the sockets are bound later)', ['--listen', '127.0.0.1:0', path.join(dir, 'app.js')]],
    ['--help', ['--help']],
    ['a drain timeout that is no duration', ['--drain-timeout', 'soon', path.join(dir, 'app.js')]],
    ['a ready timeout or a debounce that is no duration (the runner refuses them)', ['--ready-timeout', 'soon', '--debounce', '1x', path.join(dir, 'app.js')]],
    ['an unknown option', ['--nope', path.join(dir, 'app.js')]],
    ['a missing entry', [path.join(dir, 'missing.js')]],
    ['a command that is not node', ['--', 'sh', '-c', 'exit 0']],
  ])('boots nothing for %s', (_what, args) => {
    expect(firstSpawn(args)).toBeUndefined();
  });
});
