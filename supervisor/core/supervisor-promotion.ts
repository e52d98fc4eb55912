import { BatonError } from '../../shared/errors.ts';
import { formatDuration } from '../../shared/units.ts';
import { monotonicMs, type ReloadTiming } from '../../shared/reload-timing.ts';
import type { Config } from '../config/config.ts';
import { FdStore, type Listener } from '../sockets/fd-store.ts';
import { NoServiceManager, type ServiceManager } from '../systemd/service-manager.ts';
import { describeExit, type Generation } from './generation.ts';
import { launchGeneration } from './launch.ts';
import { relayGeneration } from './event-relay.ts';
import { warmUp } from './warm-up.ts';
import { pinRelease, ReleaseHistory } from './release-history.ts';
import { TicketKeys } from './ticket-keys.ts';
import { allExited, rollOut } from './rollout.ts';
import { SupervisorQueries, summedOverWorkers } from './supervisor-queries.ts';
import type { ReloadResult, SupervisorDeps } from './supervisor-types.ts';
import { Canary } from '../canary/index.ts';
import { promoteOptions } from '../canary/promote-options.ts';

/**
 * How a generation becomes the active one: launched on the held sockets (all at once or slot by
 * slot), warmed beside the serving one, promoted over its predecessors (through the canary
 * window), with the release history and the reload's timing kept. What happens around it —
 * reloads asked for, crashes, stops, hand-overs — is Supervisor's.
 */
export abstract class SupervisorPromotion extends SupervisorQueries {
  protected nextId = 1;
  protected readonly sm: ServiceManager;
  /** The canary window after a reload, rollback and max-draining (supervisor/canary). */
  readonly canary: Canary;
  /** The releases promoted, for `baton rollback` once no canary window is open. */
  protected readonly releases = new ReleaseHistory();
  /** Kept in memory only, handed to each generation on request: sessions resume across reloads. */
  private readonly ticketKeys: TicketKeys;

  constructor(config: Config, deps: SupervisorDeps) {
    const sm = deps.serviceManager ?? new NoServiceManager();
    // A replacement for memory's sake runs the release and config in force: a leak must not deploy a half-edited file.
    super(config, deps, new FdStore(deps.os, (l) => sm.removeFds(l.name)), async () => (await this.reload({ sameConfig: true })).generation);
    this.sm = sm;
    this.nextId = deps.firstGeneration ?? 1;
    this.ticketKeys = new TicketKeys(() => deps.os.now());
    this.canary = new Canary({
      os: deps.os,
      log: deps.log,
      events: this.events,
      snapshot: (filter) => this.sink.snapshot(filter),
      rolledBack: () => this.sink.count('reloads_rolled_back'),
      status: (text) => this.sm.status(text),
      activate: (g) => (this.active = g as Generation),
      live: () => this.live(),
      rss: (g) => (deps.memoryProbe ? summedOverWorkers(deps.memoryProbe, () => this.live()).read(g.pid)?.rss : undefined),
    });
  }

  abstract reload(options?: { cold?: boolean; sameConfig?: boolean; rollbackTo?: Config }): Promise<ReloadResult>;
  /** The serving generation died (or none could start). */
  protected abstract crashed(generation: Generation, err: Error): void;
  protected abstract reap(generation: Generation, exit: { code: number | null; signal: NodeJS.Signals | null }): void;
  protected abstract stoppedAccepting(generation: Generation, fd: number, lostForMs: number): void;

  protected async launchAndPromote(
    config: Config,
    why: 'start' | 'reload' | 'restart',
    release: 'new' | 'same' | 'back' = why === 'restart' ? 'same' : 'new',
    marks: Pick<ReloadTiming, 'received' | 'configRead'> = {},
  ): Promise<ReloadResult> {
    // Pinned before the launch: a link switched while it starts must not change what a rollback returns to.
    const pinned = pinRelease(config, this.deps.os.realpath?.bind(this.deps.os));
    const listeners = this.store.provide(config.listeners);
    const slots = this.store.slots(listeners, config.listeners, config.workers ?? 1);
    // Rolling replaces the active generation slot by slot; anything else (or none serving) starts every worker at once.
    const serving = this.active;
    const rolling = why === 'reload' && config.rollout?.mode === 'rolling' && serving !== undefined && serving.size === slots.length ? serving : undefined;
    const surge = config.rollout?.maxSurge ?? 1;
    if (rolling) await allExited(this.live().filter((g) => g.state === 'draining'));
    const generation = this.launch(config, slots, rolling ? surge : undefined);
    try {
      if (rolling) await rollOut(rolling, generation, surge, this.log);
      else await generation.whenReady();
      if (!rolling && why === 'reload') await this.warm(generation, config.warmup ?? 0);
    } catch (err) {
      generation.drain('it failed to become ready');
      if (!this.active && !this.mode.ending) {
        this.emit('start-failed', err as Error);
        this.crashed(generation, err as Error);
      }
      throw err;
    }
    if (this.mode.ending) {
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
    const promoted = monotonicMs();
    this.active = generation;
    const before = this.config;
    this.config = config;
    this.store.pin([...new Set(slots.flat())]);
    // A rollback puts the previous config back too: a crash restart must not relaunch the rolled-back release.
    this.releases.promoted(release, generation.id, pinned);
    const restore = (restored: number): void => {
      this.config = before;
      this.releases.promoted('back', restored, before);
    };
    this.canary.afterPromote(generation, previous, { ...promoteOptions(config, listeners, this.deps.os), restore });
    const started = generation.startTiming();
    const timing: ReloadTiming | undefined = started && { ...marks, ...started, promoted, drainSent: monotonicMs() };
    this.memory?.mark(generation.id, why === 'start' ? 'start' : why);
    for (const g of previous) this.memory?.mark(g.id, 'replaced', `by generation ${generation.id}`);
    const readyMs = Math.round(this.deps.os.now() - generation.startedAt);
    const draining = previous.map((g) => g.id);
    this.announce('info', { type: 'generation-active', generation: generation.id, pid: generation.pid, readyMs, why, draining }, `generation ${generation.id} is active`, timing ? { timing } : {});
    this.sm.storeFds(listeners.filter((l) => l.origin !== 'systemd'));
    // The first generation ever to serve is what a service manager waits for; a reload's end says READY itself.
    if (this.mode.is('starting')) this.sm.ready(this.summary());
    if (this.mode.is('starting', 'recovering')) this.mode.to('serving');
    const result = { generation: generation.id, pid: generation.pid, readyMs, ...(timing ? { timing } : {}) };
    this.emit('active', { ...result, why });
    return result;
  }

  /** A reload's warm-up: `generation` accepts beside the serving ones for `ms` before they drain. */
  private async warm(generation: Generation, ms: number): Promise<void> {
    const beside = this.live().filter((g) => g !== generation && g.state === 'active').map((g) => g.id);
    if (ms <= 0 || beside.length === 0 || this.mode.ending) return;
    this.announce('info', { type: 'warming', generation: generation.id, beside, warmupMs: ms }, `generation ${generation.id} warms up beside generation ${beside.join(', ')} for ${formatDuration(ms)}`);
    await warmUp(generation, ms, this.deps.os);
  }

  private launch(config: Config, slots: Listener[][], initial?: number): Generation {
    const id = this.nextId++;
    const deps = { os: this.deps.os, log: this.log, store: this.store, sink: this.sink, memory: this.memory, ticketKeys: this.ticketKeys, reload: async () => (await this.reload()).generation };
    const generation = launchGeneration(config, slots, id, deps, initial);
    relayGeneration(generation, this.events);
    this.generations.add(generation);
    generation.on('state', () => {
      const live = this.live();
      this.sink.population(live.length, live.filter((g) => g.state === 'draining').length);
      if (!this.mode.is('retiring')) this.sm.status(this.summary());
    });
    generation.on('worker-exit', (w, exit) => {
      if (generation.state === 'active' && generation.size > 1) {
        this.sink.count('crashes');
        this.memory?.mark(id, 'crash', `${w.label} ${describeExit(exit)}`);
      }
    });
    generation.on('worker-restarted', (w) => {
      this.log.info({ generation: id, worker: w.worker, pid: w.pid }, `${w.label} restarted`);
      if (!this.mode.is('retiring')) this.sm.status(this.summary());
    });
    generation.on('crash-loop', (err) => {
      this.events.publish({ type: 'crash-loop', generation: id, message: err.message, stderr: generation.stderrTail() });
      this.emit('fatal', err);
    });
    generation.on('exit', (exit) => this.reap(generation, exit));
    generation.on('stopped-accepting', (fd, lostForMs) => this.stoppedAccepting(generation, fd, lostForMs));
    return generation;
  }

}
