import net from 'node:net';
import { parseAddress } from '../shared/address.ts';
import { BatonError } from '../shared/errors.ts';
import { ENV } from '../shared/launch-env.ts';
import { PROTOCOL_VERSION } from '../shared/protocol.ts';
import { sharedProblem, type SharedValue } from '../shared/shared-value.ts';
import { DrainController } from './drain/drain.ts';
import { StatsFront, type Family, type HistogramOptions, type StatOptions } from './stats/stats-api.ts';
import { RequestStats, requestLabels } from './stats/request-stats.ts';
import { pacedClose as closeSpread, type Closable } from './drain/paced-close.ts';
import type { Counter, Gauge, GenerationEntry, Histogram, StatSample } from '../shared/stats/index.ts';
import type { GenerationInfo, ListenerRequest, Runtime, TicketKey } from './runtime/runtime.ts';
import { StandaloneRuntime } from './runtime/standalone.ts';
import { markListenCalled, markListening } from './start/start-timing.ts';
import { SupervisedRuntime } from './runtime/supervised.ts';
import { SharedValues, type SharedListener } from './runtime/shared-values.ts';

interface State {
  runtime: Runtime;
  controller: DrainController;
  drainCallbacks: (() => unknown)[];
  draining: boolean;
  shared: SharedValues;
  /** When Baton cuts what is left of the drain (epoch ms), once it has said. */
  deadline?: number;
}

/**
 * The process's one SDK state, kept on a global symbol rather than in this module: two resolved
 * copies of the SDK (two installed versions, or an ESM import beside a CommonJS require) would
 * otherwise each open the IPC channel and settle each other's acks.
 */
const STATE = Symbol.for('baton.sdk.state');
const slot = globalThis as unknown as { [STATE]?: State };

/** Installs `runtime` (the SDK picks one itself on first use: supervised under Baton, standalone otherwise). */
export function useRuntime(runtime: Runtime): void {
  // Every HTTP response counted per generation, for the canary window: no code in the app.
  const controller = new DrainController(new RequestStats(() => runtime.stats(), requestLabels(runtime.info().generation)));
  const current: State = { runtime, controller, drainCallbacks: [], draining: false, shared: new SharedValues() };
  slot[STATE] = current;
  controller.onCount((open) => runtime.reportConnections(open));
  runtime.start({
    drain: (deadline) => {
      if (deadline !== undefined) current.deadline = deadline;
      void drainAndExit(current);
    },
    terminate: () => {
      controller.cut();
      exit(current, 0);
    },
    park: () => controller.park().length,
    unpark: (acquire) => controller.unpark(acquire),
    hurry: () => controller.hurry(),
    shared: (key, value) => current.shared.apply(key, value),
  });
}

/** True when this process was launched by Baton (and so speaks its protocol). */
export function launchedByBaton(): boolean {
  return process.env[ENV.protocol] !== undefined && typeof process.send === 'function';
}

function current(): State {
  if (!slot[STATE]) useRuntime(launchedByBaton() ? supervisedRuntime() : new StandaloneRuntime());
  return slot[STATE] as State;
}

/** The supervised runtime, once the supervisor's protocol is known to be this SDK's (checked here, once). */
function supervisedRuntime(): Runtime {
  const theirs = process.env[ENV.protocol];
  if (theirs !== String(PROTOCOL_VERSION)) {
    throw new BatonError(
      'ERR_PROTOCOL_VERSION',
      `this program's Baton SDK speaks protocol ${PROTOCOL_VERSION} but its supervisor speaks ${theirs}: ` +
        'install the same Baton release for both, or upgrade the supervisor first (baton upgrade)',
    );
  }
  return new SupervisedRuntime();
}

function exit(s: State, code: number): void {
  if (s.runtime.exit) s.runtime.exit(code);
  else process.exit(code);
}

async function drainAndExit(s: State): Promise<void> {
  if (s.draining) return;
  s.draining = true;
  const callbacks = s.drainCallbacks.map(async (cb) => cb());
  await Promise.allSettled([s.controller.drain(), ...callbacks]);
  s.runtime.drained();
  exit(s, 0);
}

/**
 * Makes `server` (a new net.Server by default) listen on the socket Baton holds for `target`
 * (a listener name, an address such as `127.0.0.1:8080`, or both); without Baton it binds the
 * address itself. Resolves once listening. Call `ready()` after every listen has resolved.
 */
export async function listen<S extends net.Server = net.Server>(
  target: string | ListenerRequest,
  server: S = net.createServer() as S,
): Promise<S> {
  markListenCalled();
  const s = current();
  const request = typeof target === 'string' ? toRequest(target) : target;
  const options = await s.runtime.resolve(request);
  serve(server);
  (server as { [SDK_LISTEN]?: true })[SDK_LISTEN] = true;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(options as net.ListenOptions, () => {
      server.off('error', onError);
      markListening();
      resolve();
    });
  });
  return server;
}

/** Marks a server the SDK listens for, so the preload leaves its `listen({ fd })` alone. */
export const SDK_LISTEN = Symbol.for('baton.sdk.listen');

function toRequest(target: string): ListenerRequest {
  try {
    parseAddress(target);
    return { address: target };
  } catch {
    return { name: target };
  }
}

/**
 * Gives `server` Baton's drain semantics and connection accounting (listen() does this itself):
 * when draining, it stops accepting, answers with `Connection: close`, and the process exits once
 * its connections have closed. Returns `server`.
 */
export function serve<S extends net.Server>(server: S): S {
  current().controller.track(server);
  return server;
}

/** Tells Baton this generation is ready; Baton then drains the previous one. Call once, after listen(). */
export function ready(): void {
  current().runtime.ready();
}

/**
 * Runs `callback` when this generation must drain (stop background work, flush, close pools);
 * the process exits once its connections have closed and every callback's promise has settled.
 */
export function onDrain(callback: () => unknown): void {
  current().drainCallbacks.push(callback);
}

/** This generation's number, instance and start time (`supervised: false` without Baton). */
export function generation(): GenerationInfo {
  return current().runtime.info();
}

/**
 * Ends long-lived connections (WebSockets, TCP streams) spread over the last part of the drain
 * (`paced-close` in Baton's config: half the drain timeout by default), each at a random moment,
 * so their clients do not all reconnect at once. Call it from an onDrain callback; resolves once
 * all are ended. Without a drain deadline (no Baton, or not draining) they are ended now.
 */
export function pacedClose(connections: Iterable<Closable>): Promise<void> {
  const deadline = current().deadline;
  const span = Number(process.env.BATON_PACED_CLOSE_MS ?? 0);
  return closeSpread(connections, deadline ?? Date.now(), deadline === undefined ? 0 : span);
}

/**
 * The TLS session ticket key every generation shares (48 bytes, for `tls.Server#setTicketKeys`),
 * so a session made with one generation resumes on the next. The supervisor keeps it in memory
 * only and makes a new one once `rotateEvery` ms have passed; ask again at `expiresAt`.
 * Without Baton: a key of this process, on the same schedule.
 */
export function ticketKey(rotateEvery: number): Promise<TicketKey> {
  return current().runtime.ticketKey(rotateEvery);
}

/**
 * Asks Baton to reload the program, as `baton reload` does (only the active generation may);
 * resolves with the new generation's number, rejects with the cause when the reload failed.
 */
export function requestReload(reason: string): Promise<number> {
  return current().runtime.requestReload(reason);
}

/** The generation's shared values (see `shared`). */
export interface Shared {
  /** The value of `key` this process holds, or undefined when none was set. */
  get(key: string): SharedValue | undefined;
  /** Sets `key` for every worker of this generation; resolves once every worker holds it (this one included), rejects with ERR_BAD_REQUEST for a bad key or value. */
  set(key: string, value: SharedValue): Promise<void>;
  /** Calls `listener` with each value this process comes to hold from now on, whichever worker set it; returns what removes it. */
  onChange(listener: SharedListener): () => void;
}

/**
 * Values every worker of this generation (`workers: N`) holds alike: one set by any worker reaches
 * all of them, in the same order, and any that starts later in the generation (a restarted slot)
 * starts with them. A new generation starts with none. Without Baton: this process's own.
 */
export const shared: Shared = {
  get: (key) => current().shared.get(key),
  async set(key, value) {
    const problem = sharedProblem(key, value);
    if (problem) throw new BatonError('ERR_BAD_REQUEST', problem);
    await current().runtime.share(key, value);
  },
  onChange: (listener) => current().shared.listen(listener),
};

/** Open connections across the servers this generation serves. */
export function openConnections(): number {
  return current().controller.open;
}

/** The SDK's stats API (see `stats`). */
export interface SdkStats {
  /** The counter `name` (dotted, e.g. `http.ingress.downstream_rq_total`); with label names, a family (`.labels(...values)`). */
  counter(name: string, options: StatOptions & { labels: readonly string[] }): Family<Counter>;
  counter(name: string, labelsOrOptions?: Record<string, string> | (StatOptions & { labels?: Record<string, string> })): Counter;
  /** The gauge `name`: this generation's contribution, summed over live generations. */
  gauge(name: string, options: StatOptions & { labels: readonly string[] }): Family<Gauge>;
  gauge(name: string, labelsOrOptions?: Record<string, string> | (StatOptions & { labels?: Record<string, string> })): Gauge;
  /** The histogram `name` with fixed, increasing bucket upper bounds (+Inf implied), positionally or as `buckets`. */
  histogram(name: string, options: HistogramOptions & { buckets: readonly number[]; labels: readonly string[] }): Family<Histogram>;
  histogram(name: string, options: HistogramOptions & { buckets: readonly number[]; labels?: Record<string, string> }): Histogram;
  histogram(name: string, bounds: readonly number[], options: StatOptions & { labels: readonly string[] }): Family<Histogram>;
  histogram(name: string, bounds: readonly number[], labelsOrOptions?: Record<string, string> | (StatOptions & { labels?: Record<string, string> })): Histogram;
  /** Every stat whose name matches `filter`, summed over the generations writing it (for an admin endpoint). */
  snapshot(filter?: RegExp): StatSample[];
  /** Prometheus text of every stat in the segment (all generations, summed; per-generation series labelled `generation`), for an app to serve on its own port. */
  metrics(filter?: RegExp): string;
  /** The segment's generation table: which writer slot each live generation writes (for labelling per-generation series). */
  generations(): GenerationEntry[];
  /** The segment's hot-restart compatibility string (`baton version --hot-restart`). */
  version(): string;
}

const front = new StatsFront(() => current().runtime.stats());

/**
 * Counters, gauges and histograms in Baton's shared segment: counters continue across
 * generations, gauges count while this generation lives. Register once, keep the handle:
 * `inc()`/`set()`/`record()` are plain typed-array stores. Names are checked at registration
 * against their Prometheus mapping (README "Metrics"); an object whose keys are only `help`,
 * `labels` and `buckets` is options, any other object is fixed label values (the old form).
 */
export const stats: SdkStats = {
  counter: ((name: string, arg?: Record<string, string> | StatOptions) => front.counter(name, arg)) as SdkStats['counter'],
  gauge: ((name: string, arg?: Record<string, string> | StatOptions) => front.gauge(name, arg)) as SdkStats['gauge'],
  histogram: ((name: string, a?: readonly number[] | HistogramOptions, b?: Record<string, string> | StatOptions) => front.histogram(name, a, b)) as SdkStats['histogram'],
  snapshot(filter?: RegExp): StatSample[] {
    return current().runtime.stats().snapshot(filter);
  },
  metrics(filter?: RegExp): string {
    return front.metrics(filter);
  },
  generations(): GenerationEntry[] {
    return current().runtime.stats().generations();
  },
  version(): string {
    return current().runtime.stats().version;
  },
};
