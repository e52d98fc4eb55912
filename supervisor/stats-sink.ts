import type { Logger } from 'pino';
import { ENV } from '../shared/launch-env.ts';
import { createSegment, type Counter, type Gauge, type OwnerStats, type StatSample } from '../shared/stats/index.ts';
import type { GenerationState } from './generation.ts';

/** Supervisor events counted in the shared segment. */
export type SupervisorEvent = 'generations_started' | 'reloads_ok' | 'reloads_failed' | 'crashes' | 'drain_kills';

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
}

/** The shared segment of a running supervisor (writer 0). */
export class SegmentStats implements StatsSink {
  private readonly owner: OwnerStats;
  private readonly dir: string;
  private readonly log: Logger;
  private readonly writers = new Map<number, number>();
  private readonly events = new Map<SupervisorEvent, Counter>();
  private readonly live: Gauge;
  private readonly draining: Gauge;

  /** Creates the instance's segments; throws ERR_INSTANCE_RUNNING when a live supervisor owns them. */
  constructor(options: { instance: string; dir: string; maxBytes: number; maxNameLength: number }, log: Logger) {
    this.dir = options.dir;
    this.log = log;
    this.owner = createSegment({
      instance: options.instance,
      dir: options.dir,
      maxBytes: options.maxBytes,
      maxNameLength: options.maxNameLength,
      logger: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
    });
    this.live = this.owner.gauge('baton.generations_live');
    this.draining = this.owner.gauge('baton.generations_draining');
    log.info({ version: this.owner.version, files: this.owner.files }, 'stats segment ready');
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
    this.writers.set(generation, writer);
    return { [ENV.statsDir]: this.dir, [ENV.statsWriter]: String(writer) };
  }

  update(generation: number, pid: number, state: GenerationState, startedAt: number): void {
    const writer = this.writers.get(generation);
    if (writer === undefined) return;
    this.owner.setGeneration(writer - 1, { number: generation, pid, state, startedAt, writer });
  }

  detach(generation: number): void {
    const writer = this.writers.get(generation);
    if (writer === undefined) return;
    this.writers.delete(generation);
    this.owner.retireWriter(writer);
    this.owner.setGeneration(writer - 1, { number: 0, pid: 0, state: 'free', startedAt: 0, writer: 0 });
  }

  count(event: SupervisorEvent): void {
    let counter = this.events.get(event);
    if (!counter) {
      counter = this.owner.counter(`baton.${event}`);
      this.events.set(event, counter);
    }
    counter.inc();
  }

  population(live: number, draining: number): void {
    this.live.set(live);
    this.draining.set(draining);
  }

  snapshot(filter?: RegExp): StatSample[] {
    return this.owner.snapshot(filter);
  }

  close(): void {
    this.owner.destroy();
  }
}

/** No segment at all (unit tests of the orchestration): counts nothing, hands out nothing. */
export class NoStats implements StatsSink {
  readonly version = 'none';
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
}
