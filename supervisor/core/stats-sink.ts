import type { Logger } from 'pino';
import { ENV } from '../../shared/launch-env.ts';
import { adoptSegment, createSegment, hotRestartVersion, isAlive, type Counter, type Gauge, type OwnerStats, type StatSample, type StatsCapacities } from '../../shared/stats/index.ts';
import type { GenerationState } from './generation.ts';

/** Supervisor events counted in the shared segment. */
export type SupervisorEvent = 'generations_started' | 'reloads_ok' | 'reloads_failed' | 'crashes' | 'drain_kills' | 'reloads_rolled_back';

/** What the supervisor tells the stats segment; `NoStats` is the implementation without one. */
export interface StatsSink {
  /** The hot-restart compatibility string generations must match. */
  readonly version: string;
  /** Reserves a writer slot for a generation about to start; returns the environment it needs. */
  attach(generation: number): Record<string, string>;
  /** Records a generation's pid, state and start in the segment's generation table. */
  update(generation: number, pid: number, state: GenerationState, startedAt: number): void;
  /** The generation was reaped: its counters are kept, its gauges dropped, its slot freed. */
  detach(generation: number): void;
  count(event: SupervisorEvent): void;
  /** Generations alive and draining, as gauges. */
  population(live: number, draining: number): void;
  snapshot(filter?: RegExp): StatSample[];
  /** Removes the segments (clean stop). */
  close(): void;
  /**
   * A successor supervisor owns the segment now: this one only retires the writers of the
   * generations it still drains, counts nothing more, and leaves the segment in place.
   */
  handOver(): void;
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
  private owner!: OwnerStats;
  private dir!: string;
  /** Each generation's writer slot, in the segment it was started with (a cold reload starts another). */
  private readonly writers = new Map<number, { owner: OwnerStats; writer: number }>();
  private readonly events = new Map<SupervisorEvent, Counter>();
  private live!: Gauge;
  private draining!: Gauge;
  private handedOver = false;

  /**
   * Creates the instance's segments (throws ERR_INSTANCE_RUNNING when a live supervisor owns
   * them) or, with `adopt`, takes over those of the supervisor upgrading to this process.
   */
  constructor(instance: string, options: SegmentConfig, log: Logger, adopt = false) {
    this.instance = instance;
    this.log = log;
    this.create(options, adopt);
  }

  replace(options: SegmentConfig): void {
    this.owner.destroy();
    this.events.clear();
    this.create(options);
  }

  private create(options: SegmentConfig, adopt = false): void {
    this.dir = options.dir;
    this.owner = (adopt ? adoptSegment : createSegment)({
      instance: this.instance,
      dir: options.dir,
      maxBytes: options.maxBytes,
      maxNameLength: options.maxNameLength,
      ...options.capacities,
      logger: { info: (m) => this.log.info(m), warn: (m) => this.log.warn(m) },
    });
    this.live = this.owner.gauge('baton.generations_live');
    this.draining = this.owner.gauge('baton.generations_draining');
    this.log.info({ version: this.owner.version, files: this.owner.files }, 'stats segment ready');
  }

  get version(): string {
    return this.owner.version;
  }

  attach(generation: number): Record<string, string> {
    const writer = this.owner.allocateWriter();
    if (writer === undefined) {
      this.log.warn({ generation }, 'every stats writer slot is in use: this generation gets read-only stats');
      return { [ENV.statsDir]: this.dir };
    }
    this.writers.set(generation, { owner: this.owner, writer });
    return { [ENV.statsDir]: this.dir, [ENV.statsWriter]: String(writer) };
  }

  update(generation: number, pid: number, state: GenerationState, startedAt: number): void {
    const slot = this.writers.get(generation);
    if (slot === undefined) return;
    slot.owner.setGeneration(slot.writer - 1, { number: generation, pid, state, startedAt, writer: slot.writer });
  }

  detach(generation: number): void {
    const slot = this.writers.get(generation);
    if (slot === undefined) return;
    this.writers.delete(generation);
    slot.owner.retireWriter(slot.writer);
    slot.owner.setGeneration(slot.writer - 1, { number: 0, pid: 0, state: 'free', startedAt: 0, writer: 0 });
  }

  count(event: SupervisorEvent): void {
    if (this.handedOver) return;
    let counter = this.events.get(event);
    if (!counter) {
      counter = this.owner.counter(`baton.${event}`);
      this.events.set(event, counter);
    }
    counter.inc();
  }

  population(live: number, draining: number): void {
    if (this.handedOver) return;
    this.live.set(live);
    this.draining.set(draining);
  }

  snapshot(filter?: RegExp): StatSample[] {
    return this.owner.snapshot(filter);
  }

  close(): void {
    if (!this.handedOver) this.owner.destroy();
  }

  handOver(): void {
    this.handedOver = true;
  }

  reclaimForeign(): number {
    const mine = new Set([...this.writers.values()].filter((s) => s.owner === this.owner).map((s) => s.writer));
    let alive = 0;
    for (const g of this.owner.generations()) {
      if (g.writer <= 0 || mine.has(g.writer)) continue;
      if (isAlive(g.pid)) {
        alive += 1;
        continue;
      }
      this.owner.retireWriter(g.writer);
      this.owner.setGeneration(g.writer - 1, { number: 0, pid: 0, state: 'free', startedAt: 0, writer: 0 });
      this.log.info({ generation: g.number, pid: g.pid, writer: g.writer }, 'stats: freed the writer of a generation its supervisor left behind');
    }
    return alive;
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
  count(): void {}
  population(): void {}
  snapshot(): StatSample[] {
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
