import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError, isBatonError } from '../../shared/errors.ts';
import { packageVersion } from '../../shared/package-root.ts';
import { PROTOCOL_VERSION } from '../../shared/protocol.ts';
import { hotRestartVersion } from '../../shared/stats/index.ts';
import { hotRestartCompatibility } from '../../shared/hot-restart.ts';
import { loadConfig, type Config } from '../config/config.ts';
import { canaryCommand } from './canary-commands.ts';
import { CLIENT_OPTIONS, reload, stats, status, stop, upgrade } from './client-commands.ts';
import { ControlServer } from '../control/server.ts';
import { MetricsListener } from '../control/metrics-listener.ts';
import { createLogger } from '../core/logger.ts';
import { controlSocketPath } from '../os/paths.ts';
import { commandUsage, nearestCommand, wantsHelp } from './help.ts';
import { controlRequest } from './control-client.ts';
import { realOs } from '../os/real-os.ts';
import { SegmentStats } from '../core/stats-sink.ts';
import { memory, MEMORY_USAGE, profile } from './memory-commands.ts';
import { top, TOP_USAGE } from './top.ts';
import { procMemoryProbe } from '../memory/proc.ts';
import { Supervisor } from '../core/supervisor.ts';
import { EventBus } from '../core/events.ts';
import { takeInheritedSockets, UPGRADE_ENV } from '../sockets/inherited-sockets.ts';
import { serviceManagerFrom } from '../systemd/service-manager.ts';
import { Upgrader } from '../handover/predecessor.ts';
import { followPredecessor } from '../handover/successor.ts';

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
${MEMORY_USAGE}${TOP_USAGE}  baton version [--hot-restart]            version; or the stats hot-restart compatibility string

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
`;

const RUN_OPTIONS = {
  config: { type: 'string', short: 'c' },
  name: { type: 'string' },
  listen: { type: 'string', multiple: true },
  'ready-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  'accept-grace': { type: 'string' },
  readiness: { type: 'string' },
  'drain-signal': { type: 'string' },
  'control-socket': { type: 'string' },
  'control-group': { type: 'string' },
  'runtime-listeners': { type: 'string' },
  'log-level': { type: 'string' },
  workers: { type: 'string' },
  balance: { type: 'string' },
  rollout: { type: 'string' },
  'max-surge': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];


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
        return await run(rest);
      case 'check':
        return await (await import('./check.ts')).check(rest);
      case 'dev':
        // Loaded only here: the watcher and the pretty-printer stay out of `baton run`.
        return await (await import('../dev/runner.ts')).dev(rest);
      case 'reload':
        return await reload(parse(rest, CLIENT_OPTIONS).values);
      case 'rollback':
      case 'promote':
        return await canaryCommand(command, parse(rest, CLIENT_OPTIONS).values);
      case 'status':
        return await status(parse(rest, CLIENT_OPTIONS).values);
      case 'events':
        return await (await import('./events-command.ts')).events(rest);
      case 'stop':
        return await stop(parse(rest, CLIENT_OPTIONS).values);
      case 'upgrade':
        return await upgrade(parse(rest, CLIENT_OPTIONS).values);
      case 'stats':
        return stats(parse(rest, CLIENT_OPTIONS).values);
      case 'memory':
        return await memory(rest);
      case 'top':
        return await top(rest);
      case 'heap-snapshot':
      case 'heap-profile':
      case 'cpu-profile':
        return await profile(command, rest);
      case 'version':
      case '--version':
        return version(parse(rest, { 'hot-restart': { type: 'boolean' } }).values['hot-restart'] === true);
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

function parse<O extends ParseArgsConfig['options']>(args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
}

function overridesFrom(values: Record<string, unknown>, command: string[]): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const key of Object.keys(RUN_OPTIONS)) {
    if (key === 'config' || key === 'listen' || values[key] === undefined) continue;
    overrides[key] = values[key];
  }
  const listen = values.listen as string[] | undefined;
  if (listen && listen.length > 0) overrides.listeners = listen.map((address) => ({ address }));
  if (command.length > 0) overrides.command = command;
  return overrides;
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, RUN_OPTIONS, true);
  const separator = args.indexOf('--');
  if (positionals.length > 0 && separator === -1) {
    throw new BatonError('ERR_USAGE', `unexpected argument '${positionals[0]}': put the command after --`);
  }
  const file = values.config;
  const overrides = overridesFrom(values, positionals);
  const reread = (): Config => loadConfig(file, overrides, { requireCwd: true });
  const config = reread();

  const socketPath = controlSocketPath(config.name, config.controlSocket);
  // An upgrade's successor starts beside its predecessor on purpose.
  if (process.env[UPGRADE_ENV] === undefined) await refuseIfRunning(config.name, socketPath);
  const log = await createLogger(config.logLevel, config.name);
  // Both take their variables out of the environment, so no generation inherits them.
  const { sockets, upgrade } = takeInheritedSockets(process.env);
  const serviceManager = serviceManagerFrom(process.env, log);
  const events = new EventBus();
  const stats = new SegmentStats(config.name, config.stats, log, upgrade !== undefined, events);
  const supervisor = new Supervisor(config, {
    os: realOs,
    log,
    events,
    loadConfig: reread,
    stats,
    memoryProbe: procMemoryProbe,
    serviceManager,
    inherited: sockets,
    ...(upgrade ? { firstGeneration: upgrade.nextGeneration } : {}),
  });
  const upgrader = new Upgrader({
    supervisor,
    log,
    serviceEnv: serviceManager.env,
    // The successor is a whole Node process starting before its generation does.
    timeoutMs: config.readyTimeout + 30_000,
    releaseControl: () => {
      control.close();
      metrics?.close();
    },
    reclaimControl: async () => {
      control.close();
      await control.takeOver();
      await listenMetrics();
    },
    answersAsPid: async (pid) => {
      try {
        return ((await controlRequest(socketPath, 'GET', '/status', 2_000)).body as { pid?: number }).pid === pid;
      } catch {
        return false;
      }
    },
  });
  // The control API drives this supervisor, and the upgrade that replaces it.
  const target = Object.assign(supervisor, { upgrade: () => upgrader.upgrade(), statsGenerations: () => stats.generations() });
  const control = new ControlServer(socketPath, target, log, config.controlGroup);
  // The TCP metrics listener (metrics.listen; read at start, not on reload): bound once this
  // supervisor serves, since during an upgrade the predecessor holds the port until it hands over.
  const metrics = config.metrics ? new MetricsListener(config.metrics.listen, target, log) : undefined;
  const listenMetrics = async (): Promise<void> => {
    await metrics?.listen().catch((err: unknown) => log.error({ err }, `${(err as Error).message}; the supervisor runs on without it`));
  };
  // A successor replaces the control socket once its predecessor agrees, or at once when it dies.
  let handedOver = upgrade === undefined;
  if (upgrade) {
    followPredecessor({
      supervisor,
      upgrade,
      log,
      takeOverControl: () => control.takeOver().then(listenMetrics),
      onInCharge: (why) => {
        handedOver = true;
        // Nobody else will tell the service manager who the main process is now.
        if (why === 'predecessor-died') serviceManager.mainPid(process.pid);
      },
      reclaimStats: () => stats.reclaimForeign(),
    });
  } else {
    try {
      await control.listen();
      // At a cold start a port in use is the operator's to fix: refuse, as for the control socket.
      await metrics?.listen();
    } catch (err) {
      control.close();
      stats.close();
      throw err;
    }
  }

  return await new Promise<number>((resolve) => {
    let interrupts = 0;
    let exitCode = 0;
    supervisor.once('stopped', () => {
      control.close();
      metrics?.close();
      resolve(exitCode);
    });
    // Exit non-zero so a service manager sees the failure and can act on it.
    supervisor.once('fatal', () => {
      exitCode = 1;
      void supervisor.stop('crash loop');
      supervisor.forceStop();
    });
    // A successor that fails before taking over leaves sockets and segment to its predecessor.
    const standDown = (why: string, err?: Error): void => {
      log.error({ err, predecessor: upgrade?.from }, `upgrade abandoned: ${why}`);
      exitCode = 1;
      void supervisor.retire(upgrade?.from ?? process.pid);
      supervisor.forceStop();
    };
    supervisor.once('start-failed', (err) => {
      if (!handedOver) standDown('the first generation failed', err);
    });
    const interrupt = (signal: NodeJS.Signals): void => {
      interrupts += 1;
      if (!handedOver) standDown(`${signal} received`);
      else if (interrupts === 1) void supervisor.stop(`${signal} received`);
      else supervisor.forceStop();
    };
    process.on('SIGTERM', interrupt);
    process.on('SIGINT', interrupt);
    process.on('SIGHUP', () => {
      supervisor.reload().catch(() => {});
    });
    process.on('SIGUSR2', () => {
      upgrader.upgrade().catch(() => {});
    });
    try {
      supervisor.start();
    } catch (err) {
      log.fatal({ err }, 'cannot start');
      control.close();
      stats.close();
      resolve(report(err));
    }
  });
}

/** A second supervisor of one instance would fight the first over its socket and segment: name it. */
async function refuseIfRunning(name: string, socketPath: string): Promise<void> {
  let reply;
  try {
    reply = await controlRequest(socketPath, 'GET', '/status', 5_000);
  } catch {
    return; // nobody answers there: the instance is free (the stats segment checks once more)
  }
  const pid = (reply.body as { pid?: unknown }).pid;
  throw new BatonError(
    'ERR_INSTANCE_RUNNING',
    `instance "${name}" is already running (pid ${typeof pid === 'number' ? pid : 'unknown'}) with control socket ${socketPath}; stop it first, or give this one another --name`,
  );
}

async function version(hotRestart: boolean): Promise<number> {
  if (hotRestart) {
    process.stdout.write(`${hotRestartCompatibility()}\n`);
    return 0;
  }
  process.stdout.write(`baton ${packageVersion()} (protocol ${PROTOCOL_VERSION}, stats ${hotRestartVersion()})\n`);
  return 0;
}
