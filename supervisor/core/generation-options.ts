import type { Logger } from 'pino';
import { formatAddress } from '../../shared/address.ts';
import { ENV } from '../../shared/launch-env.ts';
import { LAYOUT_VERSION } from '../../shared/stats/index.ts';
import type { Config } from '../config/config.ts';
import type { FdStore, Listener } from '../sockets/fd-store.ts';
import { allocatorEnv, generationEnv, notifySocketPath } from './generation-env.ts';
import type { GenerationOptions } from './generation.ts';
import type { Os } from '../os/os.ts';
import type { StatsSink } from './stats-sink.ts';
import type { TicketKeys } from './ticket-keys.ts';
import type { WorkerOptions } from './worker.ts';
import { drainLaunch } from '../canary/drain-launch.ts';
import { isNodeCommand } from '../dev/command.ts';

export interface LaunchContext {
  os: Os;
  log: Logger;
  store: FdStore;
  sink: StatsSink;
  /** The shared TLS session ticket key. */
  ticketKeys?: TicketKeys;
  /** Reloads the program (a generation asked). */
  reload?(): Promise<number>;
  /** The supervisor samples memory: the generation reports its own figures at this interval. */
  memoryInterval?: number;
}

/** Everything generation `id` is started with under `config`; `slots[i]` are worker i's listeners. */
export function generationOptions(config: Config, slots: Listener[][], id: number, ctx: LaunchContext, initial?: number): GenerationOptions {
  const workers = slots.length;
  return {
    id,
    workers,
    ...(initial !== undefined ? { initial } : {}),
    restart: config.restart,
    worker: (slot) => workerOptions(config, slots[slot] as Listener[], id, slot, workers, ctx),
  };
}

/** What worker `slot` of generation `id` is started with, on `listeners` (its own, for reuseport). */
export function workerOptions(config: Config, listeners: Listener[], id: number, slot: number, workers: number, ctx: LaunchContext): WorkerOptions {
  const [given, ...givenArgs] = config.command as [string, ...string[]];
  // The preload and the paced-close span (supervisor/canary): a safe drain without the SDK.
  const launch = drainLaunch(config, given, givenArgs);
  const { command, args } = launch;
  const notifySocket = notifySocketPath(config, id, ctx.log, slot);
  return {
    id,
    worker: slot,
    workers,
    instance: config.name,
    spawn: {
      command,
      args,
      cwd: config.cwd,
      env: {
        ...generationEnv(config, listeners, id, slot),
        ...allocatorEnv(config, ctx.log),
        // Read and removed by the exec shim (baton-exec.c), which sets the policy before exec.
        ...(config.cpuScheduling !== undefined ? { [ENV.cpuScheduling]: config.cpuScheduling } : {}),
        ...(ctx.memoryInterval !== undefined ? { [ENV.memoryInterval]: String(ctx.memoryInterval) } : {}),
        ...launch.env,
        ...ctx.sink.attach(id, slot),
      },
      listenFds: listeners.map((l) => l.fd),
      ...(notifySocket !== undefined ? { notifySocket } : {}),
      ...(config.standby && isNodeCommand(command) ? { standby: true } : {}),
    },
    readiness: config.readiness.mode,
    ...probe(config, listeners, ctx.os),
    readyTimeout: config.readyTimeout,
    drainTimeout: config.drainTimeout,
    shutdownTimeout: config.shutdownTimeout,
    ...(config.acceptGrace ? { acceptGrace: config.acceptGrace } : {}),
    drainSignal: config.drainSignal,
    statsLayout: LAYOUT_VERSION,
    ...(ctx.ticketKeys ? { ticketKey: (rotateEvery: number) => (ctx.ticketKeys as TicketKeys).current(rotateEvery) } : {}),
    ...(ctx.reload ? { reload: () => (ctx.reload as () => Promise<number>)() } : {}),
    requestListener: (address, gen) => {
      const listener = ctx.store.request(address, config.runtimeListeners);
      ctx.store.retain(gen, [listener]);
      return { fd: listener.fd, name: listener.name, address: formatAddress(listener.bound) };
    },
  };
}

/** The readiness probe `http:` or `tcp` adds, through the listener it names. */
function probe(config: Config, listeners: Listener[], os: Os): { probe?: (pid: number) => Promise<boolean> } {
  const http = config.readiness.http;
  if (http) {
    const through = listeners.find((l) => l.name === (http.listener ?? config.listeners[0]?.name)) as Listener;
    return { probe: () => os.httpProbe(through.bound, http.path) };
  }
  if (config.readiness.mode !== 'tcp') return {};
  // validateConfig made sure there is one.
  const through = listeners.find((l) => l.bound.kind === 'tcp') as Listener;
  return { probe: (pid) => os.tcpProbe(through.bound, pid) };
}
