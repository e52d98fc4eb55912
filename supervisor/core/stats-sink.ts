import type { Logger } from 'pino';
import { announce, NoEvents, type EventSink } from './events.ts';
import { ENV } from '../../shared/launch-env.ts';
import { OWNER_LOCK_WAIT_MS, adoptSegment, createSegment, hotRestartVersion, isAlive, type Counter, type Gauge, type GenerationEntry, type OwnerStats, type StatSample, type StatsCapacities } from '../../shared/stats/index.ts';
import type { GenerationState } from './generation.ts';

/** Supervisor events counted in the shared segment (as `baton.<event>`, registered at 0 when the segment is made). */
export const SUPERVISOR_EVENTS = ['generations_started', 'reloads_ok', 'reloads_failed', 'reloads_rolled_back', 'crashes', 'drain_kills'] as const;
export type SupervisorEvent = (typeof SUPERVISOR_EVENTS)[number];

/** What the supervisor tells the stats segment; `NoStats` is the implementation without one. */
export interface StatsSink {
  /** The hot-restart compatibility string generations must match. */
  readonly version: string;
  /** Reserves a writer slot for a generation's worker (0 by default) about to start; returns the environment it needs. */
  attach(generation: number, worker?: number): Record<string, string>;
  /** Records a generation's (worker's) pid, state and start in the segment's generation table. */
  update(generation: number, pid: number, state: GenerationState, startedAt: number, worker?: number): void;
  /** The generation's worker was reaped: its counters are kept, its gauges dropped, its slot freed. */
  detach(generation: number, worker?: number): void;
  /**
   * Every process of the generation has exited and none will be restarted: the stats labelled
   * with its number leave the segment and their room is reused (a totals' continuity lives in
   * unlabelled counters, which stay).
   */
  retireGeneration(generation: number): void;
  count(event: SupervisorEvent): void;
  /** Generations alive and draining, as gauges. */
  population(live: number, draining: number): void;
  snapshot(filter?: RegExp): StatSample[];
  /** The live entries of the segment's generation table (which writer slot is which generation). */
  generations(): GenerationEntry[];
  /** Removes the segments (clean stop). */
  close(): void;
  /**
   * A successor supervisor owns the segment now: this one only retires the writers of the
   * generations it still drains, counts nothing more, and leaves the segment in place.
   */
  handOver(): void;
  /** The successor died after handOver(): this supervisor owns the segment again. */
  takeBack?(): void;
  /**
   * Frees what generations of another owner left in the generation table once their processes are
   * gone (a successor killed in the middle of an upgrade); returns how many are still alive.
   */
  reclaimForeign(): number;
  /** Starts over in a new segment (a cold reload); generations already running keep the old one. */
  replace(options: SegmentConfig): void;
}

/** Where the segment lives, its capacities and limits. */
export interface SegmentConfig {
  dir: string;
  maxBytes: number;
  maxNameLength: number;
  capacities: StatsCapacities;
}

/** The shared segment of a running supervisor (writer 0). */
export class SegmentStats implements StatsSink {
  private readonly instance: string;
  private readonly log: Logger;
  /** Where damage, restarts and the segment's (re)creation are published. */
  private readonly bus: EventSink;
  private owner!: OwnerStats;
  private dir!: string;
  /** Each generation worker's writer slot (key: generation/worker), in the segment it was started with (a cold reload starts another). */
  private readonly writers = new Map<string, { owner: OwnerStats; writer: number }>();
  private readonly events = new Map<SupervisorEvent, Counter>();
  private live!: Gauge;
  private draining!: Gauge;
  private handedOver = false;
  private options: SegmentConfig | undefined;
  /** Generations gone whose stats could not be retired yet (the lock was held): tried again at the next retirement. */
  private readonly unretired = new Set<number>();

  /**
   * Creates the instance's segments (throws ERR_INSTANCE_RUNNING when a live supervisor owns
   * them) or, with `adopt`, takes over those of the supervisor upgrading to this process.
   */
  constructor(instance: string, options: SegmentConfig, log: Logger, adopt = false, events: EventSink = NoEvents) {
    this.instance = instance;
    this.log = log;
    this.bus = events;
    this.create(options, adopt);
  }

  replace(options: SegmentConfig): void {
    try {
      this.owner.destroy();
    } catch (err) {
      this.log.warn({ err, stats: 'skipped', op: 'destroy' }, `stats: removing the old segment failed: ${(err as Error).message}`);
    }
    this.events.clear();
    this.create(options);
  }

  private create(options: SegmentConfig, adopt = false): void {
    this.dir = options.dir;
    this.options = options;
    this.owner = (adopt ? adoptSegment : createSegment)({
      instance: this.instance,
      dir: options.dir,
      maxBytes: options.maxBytes,
      maxNameLength: options.maxNameLength,
      ...options.capacities,
      // The supervisor's registrations run on its event loop: a wedged lock must not hold it for long.
      lockTimeoutMs: OWNER_LOCK_WAIT_MS,
      logger: { info: (m) => this.log.info(m), warn: (m) => announce(this.bus, this.log, 'warn', { type: 'stats', state: 'damaged', message: m }, m, { stats: 'damaged' }) },
    });
    this.live = this.owner.gauge('baton.generations_live');
    this.draining = this.owner.gauge('baton.generations_draining');
    // Registered now, at 0: a scraper sees reloads_failed before the first failure, so rate() and
    // increase() have a starting point.
    for (const event of SUPERVISOR_EVENTS) this.events.set(event, this.owner.counter(`baton.${event}`));
    if (this.owner.stalePid !== undefined) {
      this.bus.publish({ type: 'stats', state: 'reinitialised', message: `stale segments left by dead pid ${this.owner.stalePid || 'unknown'} re-initialised` });
    }
    announce(this.bus, this.log, 'info', { type: 'stats', state: 'ready', message: this.owner.version }, 'stats segment ready', { version: this.owner.version, files: this.owner.files });
  }

  /**
   * Every generation maps the segment read-write, so its contents are untrusted: each pass first
   * checks no file was cut short, and whatever damage the stats library still throws on is logged
   * and the stats step skipped — a damaged segment must never stop the supervisor.
   */
  private guard<T>(op: string, fallback: T, run: () => T): T {
    try {
      this.checkSizes();
      return run();
    } catch (err) {
      this.log.warn({ err, stats: 'skipped', op }, `stats: ${op} skipped: ${(err as Error).message}`);
      return fallback;
    }
  }

  /**
   * A segment file cut short by another process: its size is set back at once (see
   * OwnerStats.checkSizes), but what lay past the cut — the header, the table, values — is gone,
   * so the current set cannot be trusted to describe itself: the supervisor starts over in a new
   * one, as a cold reload does. Generations already running keep the old mapping until replaced.
   */
  private checkSizes(): void {
    const owners = new Set([this.owner, ...[...this.writers.values()].map((w) => w.owner)]);
    let current = false;
    for (const owner of owners) {
      for (const s of owner.checkSizes()) {
        current ||= owner === this.owner;
        const message = `stats: ${s.file} was cut to ${s.size} of its ${s.expected} bytes by another process; set its size back, the stats past byte ${s.size} are lost`;
        announce(this.bus, this.log, 'warn', { type: 'stats', state: 'shrunk', message, segment: s.segment, file: s.file, size: s.size, expected: s.expected }, message, { stats: 'shrunk' });
      }
    }
    if (current && this.options && !this.handedOver) {
      this.replace(this.options);
      const message = 'stats: started over in a new segment after the damage; new generations use it';
      announce(this.bus, this.log, 'warn', { type: 'stats', state: 'restarted', message }, message, { stats: 'restarted', files: this.owner.files });
    }
  }

  get version(): string {
    return this.owner.version;
  }

  attach(generation: number, worker = 0): Record<string, string> {
    const writer = this.guard('allocate a writer', undefined, () => this.owner.allocateWriter());
    if (writer === undefined) {
      this.log.warn({ generation, worker }, 'no stats writer slot for this worker: it gets read-only stats (raise stats.writers)');
      return { [ENV.statsDir]: this.dir };
    }
    this.writers.set(`${generation}/${worker}`, { owner: this.owner, writer });
    return { [ENV.statsDir]: this.dir, [ENV.statsWriter]: String(writer) };
  }

  update(generation: number, pid: number, state: GenerationState, startedAt: number, worker = 0): void {
    const slot = this.writers.get(`${generation}/${worker}`);
    if (slot === undefined) return;
    this.guard('record the generation', undefined, () =>
      slot.owner.setGeneration(slot.writer - 1, { number: generation, pid, state, startedAt, writer: slot.writer, worker }),
    );
  }

  detach(generation: number, worker = 0): void {
    const key = `${generation}/${worker}`;
    const slot = this.writers.get(key);
    if (slot === undefined) return;
    this.writers.delete(key);
    this.guard('retire the writer', undefined, () => slot.owner.retireWriter(slot.writer));
    this.guard('free the generation entry', undefined, () =>
      slot.owner.setGeneration(slot.writer - 1, { number: 0, pid: 0, state: 'free', startedAt: 0, writer: 0 }),
    );
  }

  retireGeneration(generation: number): void {
    // A slot of it still attached (never the case after its exit, but cheap to rule out) keeps it.
    for (const key of this.writers.keys()) if (key.startsWith(`${generation}/`)) return;
    this.unretired.add(generation);
    for (const g of [...this.unretired]) {
      const retired = this.guard('retire the stats of a gone generation', undefined, () => this.owner.retireGeneration(g));
      if (retired === undefined) return; // the lock is wedged or the segment damaged: try again at the next one
      this.unretired.delete(g);
      if (retired > 0) this.log.debug({ generation: g, stats: retired }, 'stats: retired the stats of a gone generation');
    }
  }

  count(event: SupervisorEvent): void {
    if (this.handedOver) return;
    this.guard(`count ${event}`, undefined, () => {
      let counter = this.events.get(event);
      if (!counter) {
        counter = this.owner.counter(`baton.${event}`);
        this.events.set(event, counter);
      }
      counter.inc();
    });
  }

  population(live: number, draining: number): void {
    if (this.handedOver) return;
    this.guard('set the population gauges', undefined, () => {
      this.live.set(live);
      this.draining.set(draining);
    });
  }

  snapshot(filter?: RegExp): StatSample[] {
    return this.guard('read the stats', [], () => this.owner.snapshot(filter));
  }

  generations(): GenerationEntry[] {
    return this.guard('read the generation table', [], () => this.owner.generations());
  }

  close(): void {
    if (!this.handedOver) this.guard('remove the segment', undefined, () => this.owner.destroy());
  }

  handOver(): void {
    this.handedOver = true;
  }

  takeBack(): void {
    this.handedOver = false;
  }

  reclaimForeign(): number {
    return this.guard('reclaim foreign generations', 0, () => {
      const mine = new Set([...this.writers.values()].filter((s) => s.owner === this.owner).map((s) => s.writer));
      let alive = 0;
      const freed = new Set<number>();
      for (const g of this.owner.generations()) {
        if (g.writer <= 0 || mine.has(g.writer)) continue;
        if (isAlive(g.pid)) {
          alive += 1;
          continue;
        }
        this.owner.retireWriter(g.writer);
        this.owner.setGeneration(g.writer - 1, { number: 0, pid: 0, state: 'free', startedAt: 0, writer: 0 });
        this.log.info({ generation: g.number, pid: g.pid, writer: g.writer }, 'stats: freed the writer of a generation its supervisor left behind');
        freed.add(g.number);
      }
      // Its stats go too once no worker of it is left in the table.
      const left = new Set(this.owner.generations().map((g) => g.number));
      for (const number of freed) if (!left.has(number)) this.retireGeneration(number);
      return alive;
    });
  }
}

/** No segment at all (unit tests of the orchestration): counts nothing, hands out nothing. */
export class NoStats implements StatsSink {
  version = hotRestartVersion();
  attach(): Record<string, string> {
    return {};
  }
  update(): void {}
  detach(): void {}
  retireGeneration(): void {}
  count(): void {}
  population(): void {}
  snapshot(): StatSample[] {
    return [];
  }
  generations(): GenerationEntry[] {
    return [];
  }
  close(): void {}
  handOver(): void {}
  reclaimForeign(): number {
    return 0;
  }
  replace(options: SegmentConfig): void {
    this.version = hotRestartVersion(options.capacities);
  }
}
