// The command line's dispatch. Each command's module is imported only when that command runs:
// `baton reload` on a deploy's path must not load the config schema, the logger or the supervisor
// (about 300 modules, a few hundred ms of a loaded machine), only the control client.
import { BatonError, isBatonError } from '../../shared/errors.ts';
import { commandUsage, nearestCommand, wantsHelp } from './help.ts';
import { parse } from './args.ts';
import { CLIENT_OPTIONS } from './client-options.ts';

const USAGE = `Usage:
  baton run --config FILE [options]        run the supervisor in the foreground
  baton run [options] -- CMD [ARGS...]     ... for a command given on the command line
  baton dev [options] APP [ARGS...]        develop: run APP, hot-restart it on every save (baton dev --help)
  baton check --config FILE                validate the file, command, listeners and the child's own config; exit 0 or 2
  baton reload [--name N] [--cold]         start a new generation; waits for the outcome
                                           (--cold: stats restart in a new segment, for a layout change;
                                           --wait-canary: also for its canary window, 1 if rolled back)
  baton rollback | promote [--name N]      end the open canary window: the parked generation serves
                                           again, or the new one is promoted now
  baton status [--name N] [--json]         list generations
  baton events [--name N] [--no-follow] [--after N]
                                           the supervisor's events as NDJSON, those kept and then each new
                                           one, across upgrades (--no-follow: the kept ones only)
  baton stop [--name N]                    drain every generation and exit
  baton upgrade [--name N]                 replace the supervisor itself with the Baton installed now,
                                           keeping sockets, stats and service (also: SIGUSR2)
  baton stats [--name N] [--json|--prometheus] [--filter RE]
                                           read the shared stats (works when the supervisor is wedged)
  baton memory [GEN] [--json] [--segment]  per generation: now/min/max and growth slope of RSS, PSS, heap, malloc
                                           (--json: the full series; --segment: the current figures from the
                                           shared segment and /proc, without the supervisor)
  baton heap-snapshot [GEN] [--retire|--in-place] [--compare]
                                           write a .heapsnapshot of GEN (default: the active one); prints its path.
                                           The active one is retired by default: reloaded first, snapshotted once
                                           drained, so no client waits; --in-place pauses it instead; --compare
                                           also snapshots its replacement (second path)
  baton heap-profile [GEN] [--seconds N]   record a sampling .heapprofile for N seconds [10], collected objects
                                           included; prints its path
  baton cpu-profile [GEN] [--seconds N]    record a .cpuprofile for N seconds [10]; prints its path
  baton top [--every MS]                   live view of generations: CPU, RSS, heap, event-loop delay, req/s; q quits
  baton version [--hot-restart]            version; or the stats hot-restart compatibility string

Options of run (each is also a config key):
  -c, --config FILE          YAML config, re-read on every reload
  --name NAME                instance name (control socket) [baton]
  --listen ADDR              listener to hold: HOST:PORT, [V6]:PORT, PORT (loopback), unix:/path; repeatable
  --ready-timeout DUR        how long a new generation may take to become ready [10s]
  --drain-timeout DUR        how long an old generation may drain before it is asked to exit [30s]
  --shutdown-timeout DUR     how long after that before it is killed [5s]
  --accept-grace DUR         how long the active generation may stop accepting before it is replaced [5s]
  --readiness MODE           auto | sdk | accepting | notify (READY=1) | tcp (accepts a connect) | http:/PATH (accepting + GET 2xx) [auto]
  --drain-signal SIG         sent to drain a program that does not use the SDK [SIGTERM]
  --control-socket PATH      control socket [$XDG_RUNTIME_DIR/baton/NAME.sock or /tmp/baton-UID/NAME.sock]
  --control-group GROUP      also admit this group (name or gid) to the control socket [owner and root only]
  --runtime-listeners P      loopback | any | none: binds a generation may ask for [loopback]
  --log-level LEVEL          trace | debug | info | warn | error [info]
  --workers N|auto           worker processes per generation; auto: the CPUs this process may use [1]
  --balance B                reuseport (a socket per worker) | shared (one socket) [reuseport]
  --rollout R                all-at-once | rolling (slot by slot, see --max-surge) [all-at-once]
  --max-surge N              rolling: processes beyond --workers alive at once [1]
  --standby                  boot each worker's next Node process ahead: a reload only imports the app [off]
`;

const COMMANDS = ['run', 'check', 'dev', 'reload', 'status', 'events', 'stop', 'upgrade', 'stats', 'memory', 'heap-snapshot', 'heap-profile', 'version', 'help'] as const;

/** Runs the CLI; resolves to the exit code (0 ok, 1 failed, 2 bad usage or configuration). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    // `baton dev --help` has options of its own, which dev prints.
    const help = command !== 'dev' && wantsHelp(rest) ? commandUsage(USAGE, command ?? '') : undefined;
    if (help !== undefined) {
      process.stdout.write(help);
      return 0;
    }
    switch (command) {
      case 'run':
        return await (await import('./run-command.ts')).run(rest);
      case 'check':
        return await (await import('./check.ts')).check(rest);
      case 'dev':
        // Generation 1's process boots while the runner's modules load; the watcher and the
        // pretty-printer stay out of `baton run`.
        await (await import('../dev/early-start.ts')).bootFirstGeneration(rest);
        return await (await import('../dev/runner.ts')).dev(rest);
      case 'reload':
        return await (await import('./client-commands.ts')).reload(parse(rest, CLIENT_OPTIONS).values);
      case 'rollback':
      case 'promote':
        return await (await import('./canary-commands.ts')).canaryCommand(command, parse(rest, CLIENT_OPTIONS).values);
      case 'status':
        return await (await import('./client-commands.ts')).status(parse(rest, CLIENT_OPTIONS).values);
      case 'events':
        return await (await import('./events-command.ts')).events(rest);
      case 'stop':
        return await (await import('./client-commands.ts')).stop(parse(rest, CLIENT_OPTIONS).values);
      case 'upgrade':
        return await (await import('./client-commands.ts')).upgrade(parse(rest, CLIENT_OPTIONS).values);
      case 'stats':
        return (await import('./stats-command.ts')).stats(parse(rest, CLIENT_OPTIONS).values);
      case 'memory':
        return await (await import('./memory-commands.ts')).memory(rest);
      case 'top':
        return await (await import('./top.ts')).top(rest);
      case 'heap-snapshot':
      case 'heap-profile':
      case 'cpu-profile':
        return await (await import('./memory-commands.ts')).profile(command, rest);
      case 'version':
      case '--version':
        return (await import('./version-command.ts')).version(parse(rest, { 'hot-restart': { type: 'boolean' } }).values['hot-restart'] === true);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default: {
        const near = nearestCommand(command, COMMANDS);
        throw new BatonError('ERR_USAGE', `unknown command '${command}'${near ? `; did you mean 'baton ${near}'?` : ''}`);
      }
    }
  } catch (err) {
    return report(err);
  }
}

function report(err: unknown): number {
  if (isBatonError(err)) {
    process.stderr.write(`baton: ${err.message}\n`);
    if (err.code === 'ERR_USAGE') process.stderr.write(`\n${USAGE}`);
    // A listener that cannot be bound is a configuration problem too (taken, or not this host's address).
    return err.code === 'ERR_USAGE' || err.code === 'ERR_CONFIG' || err.code === 'ERR_LISTENER' ? 2 : 1;
  }
  const e = err as { code?: string; message?: string };
  if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`baton: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  process.stderr.write(`baton: ${(err as Error).stack ?? String(err)}\n`);
  return 1;
}
