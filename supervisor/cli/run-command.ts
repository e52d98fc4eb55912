// `baton run`: reads the configuration, binds the listeners and runs the supervisor in the
// foreground. Only this command loads the supervisor (and the config schema): the client
// commands of cli.ts must start in a few milliseconds, since `baton reload` is on a deploy's path.
import { type ParseArgsConfig } from 'node:util';
import { BatonError } from '../../shared/errors.ts';
import { loadConfig, type Config } from '../config/config.ts';
import { ControlServer } from '../control/server.ts';
import { MetricsListener } from '../control/metrics-listener.ts';
import { createLogger } from '../core/logger.ts';
import { controlSocketPath } from '../os/paths.ts';
import { controlRequest } from './control-client.ts';
import { parse } from './args.ts';
import { realOs } from '../os/real-os.ts';
import { SegmentStats } from '../core/stats-sink.ts';
import { procMemoryProbe } from '../memory/proc.ts';
import { Supervisor } from '../core/supervisor.ts';
import { EventBus } from '../core/events.ts';
import { takeInheritedSockets, UPGRADE_ENV } from '../sockets/inherited-sockets.ts';
import { serviceManagerFrom } from '../systemd/service-manager.ts';
import { Upgrader } from '../handover/predecessor.ts';
import { followPredecessor } from '../handover/successor.ts';

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
  'cpu-scheduling': { type: 'string' },
  standby: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

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

/** `baton run`: the supervisor in the foreground; resolves to its exit code once it has stopped. */
export async function run(args: string[]): Promise<number> {
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

  return await new Promise<number>((resolve, reject) => {
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
      reject(err); // the dispatch reports it and picks the exit code
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
