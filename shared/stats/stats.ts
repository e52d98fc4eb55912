/**
 * The stats API: the supervisor owns the segments (createSegment, writer 0: owner-stats.ts), each
 * generation maps them with the writer index the supervisor gave it (openSegment), and `baton
 * stats` may map them with no writer at all to read.
 */
import { lazyModule } from '../lazy-module.ts';
import { H, invalid, type StatsCapacities } from './layout.ts';
import { Registry, type Counter, type Gauge, type Histogram } from './registry.ts';
import type { GenerationEntry } from './generations.ts';
import { SegmentSet, type StatsLimits, type StatsLogger } from './segment.ts';
import type { StatSample } from './snapshot.ts';
import { Catalog, statKey, type TableUsage } from './table.ts';

/** Reading (snapshot, sample) loads on first use: a generation's memory reporter only writes. */
const reading = lazyModule<typeof import('./snapshot.ts')>(import.meta.url, './snapshot');

/** Options shared by createSegment and openSegment. */
export interface SegmentOptions extends StatsCapacities {
  /** Instance name: the files are `<dir>/baton-<uid>-<instance>.<k>`. */
  instance: string;
  /** Directory of the segment files. @default "/dev/shm" */
  dir?: string;
  /** Gets notes (stale segment re-initialised, lock stolen) and the one overflow warning. @default warnings via process.emitWarning, notes dropped */
  logger?: StatsLogger;
  /** How long a registration waits for the lock held by a live process that maps the segment before giving up on that stat (not recorded, counted in baton.stats.overflow); the same holder is not waited on again. @default 1000 */
  lockTimeoutMs?: number;
}

/** Options of createSegment. */
export interface CreateSegmentOptions extends SegmentOptions, StatsLimits {
  /** True when no other process will write writer 0's slot (a private segment); the supervisor's is shared with its successor during an upgrade, so its counters add to what the cell holds. @default false */
  soleWriter?: boolean;
}

/** Options of openSegment. */
export interface OpenSegmentOptions extends SegmentOptions {
  /** Writer index the supervisor assigned (1 to writers - 1); omitted for a read-only mapping whose handles are no-ops. */
  writer?: number;
}

/** One process's view of an instance's stats. */
export class Stats {
  readonly #set: SegmentSet;
  readonly #catalog: Catalog;
  readonly #registry: Registry;

  /** Use openSegment (or createSegment): this wraps an already mapped set. A generation's writer slot is its alone (`soleWriter`). */
  constructor(set: SegmentSet, writer: number | undefined, lockTimeoutMs?: number, soleWriter = writer !== undefined && writer > 0) {
    this.#set = set;
    this.#catalog = new Catalog(set);
    this.#registry = new Registry(this.#catalog, { writer, lockTimeoutMs, soleWriter });
    this.#catalog.sync();
  }

  /** Instance name. */
  get instance(): string {
    return this.#set.instance;
  }

  /** This process's writer index; undefined when read-only. */
  get writer(): number | undefined {
    return this.#registry.writer;
  }

  /** Hot-restart version string of the mapped segments. */
  get version(): string {
    return this.#set.layout.version;
  }

  /** Paths of the segment files mapped so far. */
  get files(): string[] {
    return this.#set.files;
  }

  /** Total bytes registrations may use (maxSegments × segment size). */
  get maxBytes(): number {
    return this.#set.header[H.maxSegments]! * this.#set.layout.segmentBytes;
  }

  /** The counter `name` (dotted, e.g. `http.ingress.downstream_rq_total`) with optional labels and help text, which is stored with it for every reader's Prometheus HELP (cleaned to one line of at most 511 bytes). */
  counter(name: string, labels?: Record<string, string>, help?: string): Counter {
    return this.#registry.counter(name, labels, help);
  }

  /** The gauge `name` with optional labels and help; each writer sets its own contribution. */
  gauge(name: string, labels?: Record<string, string>, help?: string): Gauge {
    return this.#registry.gauge(name, labels, help);
  }

  /** The histogram `name` with fixed, strictly increasing bucket upper bounds (+Inf is implied), optional labels and help. */
  histogram(name: string, bounds: readonly number[], labels?: Record<string, string>, help?: string): Histogram {
    return this.#registry.histogram(name, bounds, labels, help);
  }

  /** Every stat whose name matches `filter`, summed over writers; consistent with retirements. */
  snapshot(filter?: RegExp): StatSample[] {
    return reading().readSnapshot(this.#catalog, filter);
  }

  /** One stat by name and labels, or undefined if nobody registered it. */
  sample(name: string, labels?: Record<string, string>): StatSample | undefined {
    return reading().readSample(this.#catalog, statKey('counter', name, labels).key);
  }

  /** The live entries of the generation table. */
  generations(): GenerationEntry[] {
    return this.#set.generations();
  }

  /** Room in use: segments mapped, live and retired stats, table entries, cells and arena bytes taken. */
  usage(): TableUsage {
    this.#catalog.sync();
    return this.#catalog.usage();
  }

  /** @internal for the owner: the mapped set and its catalog. */
  protected get internals(): { set: SegmentSet; catalog: Catalog } {
    return { set: this.#set, catalog: this.#catalog };
  }
}

/** Maps an instance's existing segments, as writer `options.writer` or read-only; refuses a different hot-restart version. */
export function openSegment(options: OpenSegmentOptions): Stats {
  const set = SegmentSet.open(options);
  const { writer } = options;
  if (writer !== undefined && (!Number.isInteger(writer) || writer < 1 || writer >= set.layout.writers)) {
    invalid(`writer must be an integer from 1 to ${set.layout.writers - 1} (0 is the supervisor's), got ${writer}`);
  }
  return new Stats(set, writer, options.lockTimeoutMs);
}
