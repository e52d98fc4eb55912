/**
 * `baton dev`'s first generation, booted ahead: before the supervisor's modules load (about 100 ms
 * of the start), its process is started as a standby — Node, tsx and Baton's preload loading on
 * the other core — and the supervisor's first spawn wakes it, so the first answer comes about one
 * Node start sooner (issue #19). What is booted is only a guess of that spawn, built from the
 * command line alone; the standby pool hands it over only if the spawn matches it exactly
 * (command, arguments, directory, environment, sockets), and kills it otherwise.
 */
import { parseDuration } from '../../shared/units.ts';
import { drainLaunch } from '../canary/drain-launch.ts';
import type { Config } from '../config/config.ts';
import { generationEnv } from '../core/generation-env.ts';
import type { SpawnSpec } from '../os/os.ts';
import { isNodeCommand, parseDevArgs } from './command.ts';
import { DEV_DRAIN_TIMEOUT, DEV_NAME, devEnv } from './dev-env.ts';

/** The spawn `baton dev ARGS` will make for generation 1, or undefined where no standby could match it. */
export function firstSpawn(args: string[], cwd = process.cwd()): SpawnSpec | undefined {
  let parsed: ReturnType<typeof parseDevArgs>;
  try {
    parsed = parseDevArgs(args);
  } catch {
    return undefined; // the runner reports it
  }
  const [command, ...rest] = parsed.command;
  // --listen binds sockets the standby would have to hold from its start: the supervisor binds them later.
  if (parsed.values.help || command === undefined || !isNodeCommand(command) || (parsed.values.listen ?? []).length > 0) return undefined;
  let drainTimeout: number;
  try {
    drainTimeout = parseDuration(parsed.values['drain-timeout'] ?? DEV_DRAIN_TIMEOUT);
    // The runner refuses a bad duration before it spawns, and this process would have run the app's
    // import already (it wakes itself): none is booted for a command line the runner will refuse.
    for (const other of [parsed.values['ready-timeout'], parsed.values.debounce]) if (other !== undefined) parseDuration(other);
  } catch {
    return undefined; // the runner reports it
  }
  // The paced-close span (BATON_PACED_CLOSE_MS) is handed over on waking, and a standby woken before
  // the supervisor is up is taken only if what it was handed is exactly what the spawn hands: it
  // comes from the same function, with dev-config.ts's values (paced-close and preload at their defaults).
  const launch = drainLaunch({ preload: 'auto', drainTimeout } as Config, command, rest);
  const env = { ...generationEnv({ name: DEV_NAME, env: devEnv(), workers: 1 }, [], 1, 0), ...launch.env };
  return { command: launch.command, args: launch.args, cwd, env, listenFds: [], standby: true, onLine: () => {} };
}

/** Boots generation 1's process of `baton dev ARGS` as a standby, when the command line says what it will be. */
export async function bootFirstGeneration(args: string[]): Promise<void> {
  const spec = firstSpawn(args);
  if (spec === undefined) return;
  try {
    (await import('../os/generation-process.ts')).prebootStandby(spec);
  } catch {
    // no standby (no addon, no process): generation 1 starts cold, and the runner reports what is wrong
  }
}
