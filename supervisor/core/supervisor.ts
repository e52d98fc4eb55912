import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { formatAddress } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { Backoff } from './backoff.ts';
import type { Config } from '../config/config.ts';
import { formatDuration } from '../../shared/units.ts';
import { FdStore, type Listener } from '../sockets/fd-store.ts';
import { generationOptions } from './generation-options.ts';
import { checkProfileSeconds, heapProfile, heapSnapshot, profileDir, releaseMemory, type ProfileResult } from './generation-requests.ts';
import { describeExit, Generation, type GenerationInfo } from './generation.ts';
import type { Os } from '../os/os.ts';
import { hotRestartVersion, type StatSample } from '../../shared/stats/index.ts';
import { NoStats, type StatsSink } from './stats-sink.ts';
import type { ReplyBody } from '../../shared/protocol.ts';
import { MemoryMonitor, type GenerationMemory, type MemoryFlag } from '../memory/monitor.ts';
import type { MemoryProbe } from '../memory/proc.ts';
import type { InheritedSocket, SocketOrigin } from '../sockets/inherited-sockets.ts';
import { NoServiceManager, type ServiceManager } from '../systemd/service-manager.ts';
import { Canary } from '../canary/index.ts';
import { promoteOptions } from '../canary/promote-options.ts';

/** How many exited generations `status` still shows. */
const EXITED_KEPT = 8;

export interface ReloadResult {
  generation: number;
  pid: number;
  readyMs: number;
}

export interface StatusSnapshot {
  instance: string;
  pid: number;
  uptimeMs: number;
  active: number | null;
  stopping: boolean;
  generations: (GenerationInfo & { memory?: MemoryFlag })[];
  /** `from`: where a socket this supervisor did not bind came from. */
  listeners: { name: string; address: string; fd: number; from?: SocketOrigin }[];
  /** The open canary window, if a reload is on probation. */
  canary?: ReturnType<Canary['status']>['canary'];
  /** Draining generations hurried by max-draining, not yet exited. */
  hurried?: number[];
  /** The active generation runs with Baton's preload (it drains safely without the SDK). */
  preload?: true;
}

interface SupervisorEvents {
  /** The supervisor gave up (crash loop); the process should exit non-zero. */
  fatal: [error: BatonError];
  /** Every generation has exited after stop(). */
  stopped: [];
  /** A generation was promoted: it serves, its predecessors drain. */
  active: [promoted: ReloadResult & { why: 'start' | 'reload' | 'restart' }];
  /** A generation failed to start while none was serving (a restart with backoff follows). */
  'start-failed': [error: Error];
}

/** What a supervisor hands a successor (baton upgrade) besides the descriptors of `listeners`. */
export interface HandOver {
  nextGeneration: number;
  listeners: Listener[];
}

export interface SupervisorDeps {
  os: Os;
  log: Logger;
  /** Reads the configuration afresh (from disk and flags); called on every reload. */
  loadConfig(): Config;
  /** The shared stats segment. @default NoStats (none) */
  stats?: StatsSink;
  /** Reads a process's memory from /proc; without one the supervisor tracks no memory. */
  memoryProbe?: MemoryProbe;
  /** Hears of readiness, reloads and the stop (systemd's sd_notify). @default NoServiceManager */
  serviceManager?: ServiceManager;
  /** Listening sockets passed in by systemd or by the supervisor this one took over from. */
  inherited?: InheritedSocket[];
  /** Number of the first generation: a successor continues its predecessor's numbering. @default 1 */
  firstGeneration?: number;
}

/**
 * Runs generations of one program: launches them, hands them the held sockets, promotes a ready
 * one and drains its predecessors, rolls back a failed reload and restarts a crashed generation.
 * Call `start()` once, then `reload()` any number of times, and `stop()` to finish.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly deps: SupervisorDeps;
  private readonly log: Logger;
  private readonly store: FdStore;
  private readonly startedAt: number;
  private config: Config;
  private readonly generations: Generation[] = [];
  private active: Generation | undefined;
  private nextId = 1;
  private reloading: Promise<ReloadResult> | undefined;
  private restartTimer: unknown;
  private readonly backoff: Backoff;
  private stopping: Promise<void> | undefined;
  private readonly sink: StatsSink;
  private readonly memory: MemoryMonitor | undefined;
  private readonly sm: ServiceManager;
  private announcedReady = false;
  private handingOver = false;
  private retiring = false;
  /** The canary window after a reload, rollback and max-draining (supervisor/canary). */
  readonly canary: Canary;

  constructor(config: Config, deps: SupervisorDeps) {
    super();
    this.config = config;
    this.deps = deps;
    this.sink = deps.stats ?? new NoStats();
    this.log = deps.log;
    this.sm = deps.serviceManager ?? new NoServiceManager();
    this.store = new FdStore(deps.os, (l) => this.sm.removeFds(l.name));
    this.nextId = deps.firstGeneration ?? 1;
    this.startedAt = deps.os.now();
    this.backoff = new Backoff(config.restart, deps.os);
    this.canary = new Canary({
      os: deps.os,
      log: deps.log,
      snapshot: (filter) => this.sink.snapshot(filter),
      rolledBack: () => this.sink.count('reloads_rolled_back'),
      status: (text) => this.sm.status(text),
      activate: (g) => (this.active = g as Generation),
      live: () => this.live(),
    });
    if (deps.memoryProbe && config.memory && config.memory.interval > 0) {
      this.memory = new MemoryMonitor(
        config.memory,
        deps.os,
        deps.memoryProbe,
        {
          live: () => this.live(),
          snapshot: (filter) => this.sink.snapshot(filter),
          release: (id) => this.release(id),
          replace: async () => (await this.reload()).generation,
        },
        deps.log,
      );
    }
  }

  /** Binds the configured listeners (throws ERR_LISTENER) and launches the first generation. */
  start(): void {
    this.store.adopt(this.deps.inherited ?? []);
    const listeners = this.store.provide(this.config.listeners);
    this.store.pin(listeners);
    for (const l of listeners) {
      this.log.info({ listener: l.name, address: formatAddress(l.bound), fd: l.fd, ...(l.origin ? { from: l.origin } : {}) }, 'listening');
    }
    this.sm.storeFds(listeners.filter((l) => l.origin !== 'systemd'));
    void this.launchAndPromote(this.config, 'start').catch(() => {});
    this.memory?.start();
  }

  /**
   * Starts a new generation with the configuration re-read from disk; resolves once it is active
   * and its predecessors are draining. Rejects with ERR_RELOAD_FAILED (the serving generation is
   * untouched). A reload asked for while one is starting shares that one's outcome.
   */
  reload(options: { cold?: boolean } = {}): Promise<ReloadResult> {
    if (this.stopping) return Promise.reject(new BatonError('ERR_SHUTTING_DOWN', 'cannot reload: the supervisor is stopping'));
    if (this.handingOver) return Promise.reject(new BatonError('ERR_UPGRADING', 'cannot reload: the supervisor is being upgraded'));
    if (!this.reloading) {
      this.sm.reloading();
      this.reloading = this.doReload(options.cold === true).finally(() => {
        this.reloading = undefined;
        // READY ends the reload for systemd whatever came of it: a failed one leaves the old generation serving.
        this.sm.ready(this.summary());
      });
    }
    return this.reloading;
  }

  /** Drains every generation, then closes the sockets; resolves when all have exited. */
  stop(reason = 'stop requested'): Promise<void> {
    if (this.stopping) return this.stopping;
    this.log.info({ reason }, 'stopping: draining every generation');
    if (!this.retiring) this.sm.stopping();
    this.deps.os.clearTimeout(this.restartTimer);
    this.stopping = new Promise<void>((resolve) => {
      this.once('stopped', resolve);
    });
    for (const g of this.live()) g.drain(reason);
    this.finishStopIfDone();
    return this.stopping;
  }

  /** Kills every generation now (a second interrupt). */
  forceStop(): void {
    this.log.warn({ live: this.live().length }, 'forced stop: killing every generation');
    for (const g of this.live()) g.kill();
  }

  status(): StatusSnapshot {
    const now = this.deps.os.now();
    return {
      instance: this.config.name,
      pid: process.pid,
      uptimeMs: now - this.startedAt,
      active: this.active?.id ?? null,
      stopping: this.stopping !== undefined,
      generations: this.generations.map((g) => {
        const memory = this.memory?.flag(g.id);
        return { ...g.info(), ...(memory ? { memory } : {}) };
      }),
      ...this.canary.status(),
      listeners: this.store.all().map((l) => ({ name: l.name, address: formatAddress(l.bound), fd: l.fd, ...(l.origin ? { from: l.origin } : {}) })),
    };
  }

  /** One line for a service manager: the active generation, how many drain, open connections. */
  summary(): string {
    const live = this.live();
    const draining = live.filter((g) => g.state === 'draining').length;
    const connections = live.reduce((n, g) => n + (g.connections ?? 0), 0);
    const head = this.active ? `generation ${this.active.id} active (pid ${this.active.pid})` : this.stopping ? 'stopping' : 'no generation active';
    return `${head}, ${draining} draining, ${connections} open connections`;
  }

  /**
   * Freezes the supervisor for an upgrade (reloads are refused) and returns what the successor
   * needs: every held listener and the next generation number. Then `retire` or `resumeAfterHandOver`.
   */
  beginHandOver(): HandOver {
    if (this.stopping) throw new BatonError('ERR_SHUTTING_DOWN', 'cannot upgrade: the supervisor is stopping');
    this.handingOver = true;
    return { nextGeneration: this.nextId, listeners: this.store.all() };
  }

  /** The successor failed: this supervisor carries on as before (restarting, if its generation crashed meanwhile). */
  resumeAfterHandOver(): void {
    this.handingOver = false;
    if (!this.active && !this.stopping && !this.live().some((g) => g.state === 'starting')) this.restart();
    this.reclaimAbandoned(20);
  }

  /** A successor that died outright left its generation in the stats table: free it once that process is gone too. */
  private reclaimAbandoned(tries: number): void {
    if (this.sink.reclaimForeign() > 0 && tries > 0) this.deps.os.setTimeout(() => this.reclaimAbandoned(tries - 1), 250);
  }

  /**
   * The successor serves with the same sockets and segment: drain every generation and finish,
   * closing no socket and leaving the segment to it. Resolves when the last generation has exited.
   */
  retire(successor: number): Promise<void> {
    this.retiring = true;
    this.sink.handOver();
    this.sm.mainPid(successor);
    this.sm.close();
    return this.stop(`handed over to supervisor pid ${successor}`);
  }

  /** Every stat in the shared segment whose name matches `filter`, summed over generations. */
  stats(filter?: RegExp): StatSample[] {
    return this.sink.snapshot(filter);
  }

  /** Per generation: now/min/max/slope of the main figures, fragmentation and allocator summary. */
  memoryReport(): { interval: number; window: number; generations: GenerationMemory[] } {
    const m = this.config.memory;
    return { interval: m?.interval ?? 0, window: m?.window ?? 0, generations: this.memory?.report() ?? [] };
  }

  /** The full memory series of one generation or all. */
  memorySeries(generation?: number): ReturnType<MemoryMonitor['seriesOf']> {
    return this.memory?.seriesOf(generation) ?? [];
  }

  /** Asks a generation (the active one by default) to release memory: GC, then malloc_trim. */
  async release(generation?: number): Promise<ReplyBody> {
    const g = this.target(generation);
    const reply = await releaseMemory(g);
    if (reply.ok) this.memory?.noteReleased(g.id, Number(reply.released ?? 0));
    return reply;
  }

  /** Has a generation (the active one by default) write a heap snapshot; resolves with its path. */
  async heapSnapshot(generation?: number): Promise<ProfileResult> {
    return heapSnapshot(this.target(generation), profileDir(this.config));
  }

  /** Has a generation record a sampling heap profile for `seconds`; resolves with its path. */
  async heapProfile(generation: number | undefined, seconds: number): Promise<ProfileResult> {
    // A bad length is the caller's first mistake to hear about, before which generation or where.
    checkProfileSeconds(seconds);
    return heapProfile(this.target(generation), profileDir(this.config), seconds);
  }

  private target(generation?: number): Generation {
    const g = generation === undefined ? this.active : this.live().find((x) => x.id === generation);
    if (!g) {
      throw new BatonError(
        'ERR_USAGE',
        generation === undefined ? 'no generation is active' : `no live generation ${generation} (live: ${this.live().map((x) => x.id).join(', ') || 'none'})`,
      );
    }
    return g;
  }

  private async doReload(cold: boolean): Promise<ReloadResult> {
    let next: Config;
    try {
      next = this.deps.loadConfig();
      if (next.name !== this.config.name) {
        throw new BatonError('ERR_CONFIG', `name cannot change on reload (from '${this.config.name}' to '${next.name}'): restart Baton instead`);
      }
      const version = hotRestartVersion(next.stats.capacities);
      if (cold) {
        this.sink.replace(next.stats);
        this.log.warn({ version }, 'cold reload: stats were reset to zero in a new segment');
      } else if (version !== this.sink.version) {
        throw new BatonError(
          'ERR_STATS_INCOMPATIBLE',
          `the stats layout changes from ${this.sink.version} to ${version}: a hot restart would corrupt the shared segment; ` +
            'use baton reload --cold to replace the generation with stats restarted from zero',
        );
      }
    } catch (err) {
      throw this.reloadFailed(err);
    }
    this.deps.os.clearTimeout(this.restartTimer);
    try {
      const result = await this.launchAndPromote(next, 'reload');
      this.sink.count('reloads_ok');
      return result;
    } catch (err) {
      throw this.reloadFailed(err);
    }
  }

  private reloadFailed(err: unknown): BatonError {
    this.sink.count('reloads_failed');
    const serving = this.active ? `generation ${this.active.id} keeps serving` : 'no generation is serving';
    const error = new BatonError('ERR_RELOAD_FAILED', `reload failed: ${(err as Error).message}\n(${serving})`, { cause: err });
    this.log.error({ err: error, code: (err as { code?: string }).code }, 'reload failed');
    return error;
  }

  private async launchAndPromote(config: Config, why: 'start' | 'reload' | 'restart'): Promise<ReloadResult> {
    const listeners = this.store.provide(config.listeners);
    const generation = this.launch(config, listeners);
    try {
      await generation.whenReady();
    } catch (err) {
      generation.drain('it failed to become ready');
      if (!this.active && !this.stopping) {
        this.emit('start-failed', err as Error);
        this.crashed(generation, err as Error);
      }
      throw err;
    }
    if (this.stopping) {
      generation.drain('supervisor stopping');
      throw new BatonError('ERR_SHUTTING_DOWN', 'the supervisor is stopping');
    }
    // A slow start or restart must not take over from a newer generation promoted meanwhile.
    if (this.active && this.active.id > generation.id) {
      generation.drain(`generation ${this.active.id} became active first`);
      throw new BatonError('ERR_RELOAD_SUPERSEDED', `generation ${generation.id} was ready after the newer generation ${this.active.id}`);
    }
    const previous = this.live().filter((g) => g !== generation && (g.state === 'active' || g.state === 'ready'));
    generation.promote();
    this.active = generation;
    this.config = config;
    this.store.pin(listeners);
    this.canary.afterPromote(generation, previous, promoteOptions(config, listeners, this.deps.os));
    this.memory?.mark(generation.id, why === 'start' ? 'start' : why);
    for (const g of previous) this.memory?.mark(g.id, 'replaced', `by generation ${generation.id}`);
    const readyMs = Math.round(this.deps.os.now() - generation.startedAt);
    this.log.info({ generation: generation.id, readyMs, why, draining: previous.map((g) => g.id) }, `generation ${generation.id} is active`);
    this.sm.storeFds(listeners.filter((l) => l.origin !== 'systemd'));
    if (!this.announcedReady) {
      this.announcedReady = true;
      this.sm.ready(this.summary());
    }
    const result = { generation: generation.id, pid: generation.pid, readyMs };
    this.emit('active', { ...result, why });
    return result;
  }

  private launch(config: Config, listeners: Listener[]): Generation {
    const id = this.nextId++;
    const memoryInterval = config.memory && config.memory.interval > 0 && this.memory ? config.memory.interval : undefined;
    const options = generationOptions(config, listeners, id, {
      os: this.deps.os,
      log: this.log,
      store: this.store,
      sink: this.sink,
      ...(memoryInterval !== undefined ? { memoryInterval } : {}),
    });
    const generation = new Generation(options, this.deps.os, this.log);
    this.store.retain(id, listeners);
    this.memory?.track(id, generation.pid);
    this.generations.push(generation);
    this.sink.count('generations_started');
    this.sink.update(id, generation.pid, generation.state, generation.startedAt);
    generation.on('state', (to) => {
      this.sink.update(id, generation.pid, to, generation.startedAt);
      const live = this.live();
      this.sink.population(live.length, live.filter((g) => g.state === 'draining').length);
      if (!this.retiring) this.sm.status(this.summary());
    });
    generation.on('exit', (exit) => this.reap(generation, exit));
    return generation;
  }

  private reap(generation: Generation, exit: { code: number | null; signal: NodeJS.Signals | null }): void {
    this.store.release(generation.id);
    this.sink.detach(generation.id);
    this.memory?.exited(generation.id);
    if (generation.killedAtShutdown) this.sink.count('drain_kills');
    this.canary.exited(generation, describeExit(exit));
    const exited = this.generations.filter((g) => g.state === 'exited');
    for (const old of exited.slice(0, Math.max(0, exited.length - EXITED_KEPT))) {
      this.generations.splice(this.generations.indexOf(old), 1);
    }
    if (generation === this.active) {
      this.active = undefined;
      if (!this.stopping) {
        this.crashed(
          generation,
          new BatonError('ERR_GENERATION_EXITED', `active generation ${generation.id} (pid ${generation.pid}) ${describeExit(exit)}`),
        );
      }
    }
    this.finishStopIfDone();
  }

  /** The serving generation died (or none could start): restart with backoff, or give up. */
  private crashed(generation: Generation, err: Error): void {
    this.sink.count('crashes');
    this.memory?.mark(generation.id, 'crash', err.message);
    const delay = this.backoff.failure();
    const tail = generation.stderrTail();
    if (delay === null) {
      const fatal = new BatonError(
        'ERR_CRASH_LOOP',
        `${err.message}; ${this.config.restart.maxFailures} failures within ${formatDuration(this.config.restart.window)}: giving up`,
        { cause: err },
      );
      this.log.fatal({ err: fatal, stderr: tail }, 'crash loop: giving up');
      this.emit('fatal', fatal);
      return;
    }
    this.log.error({ err, stderr: tail, restartInMs: delay }, `generation ${generation.id} failed; restarting in ${formatDuration(delay)}`);
    if (this.live().some((g) => g.state === 'starting')) return;
    this.restartTimer = this.deps.os.setTimeout(() => this.restart(), delay);
  }

  private restart(): void {
    // During an upgrade the successor's generation comes next (and has the next number); should the
    // upgrade fail, resumeAfterHandOver restarts instead.
    if (this.stopping || this.active || this.reloading || this.handingOver) return;
    void this.launchAndPromote(this.config, 'restart').catch(() => {});
  }

  private live(): Generation[] {
    return this.generations.filter((g) => g.state !== 'exited');
  }

  private finishStopIfDone(): void {
    if (!this.stopping || this.live().length > 0) return;
    if (this.retiring) this.store.handOver();
    else this.store.closeAll();
    this.memory?.stop();
    this.sink.close();
    // A retiring supervisor stopped notifying when it handed over.
    if (!this.retiring) this.sm.close();
    this.log.info(this.retiring ? 'every generation has exited; the successor holds the listeners' : 'every generation has exited; listeners closed');
    this.emit('stopped');
  }
}
