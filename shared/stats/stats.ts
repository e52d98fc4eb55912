/**
 * The stats API: the supervisor owns the segments (createSegment, writer 0), each generation maps
 * them with the writer index the supervisor gave it (openSegment), and `baton stats` may map them
 * with no writer at all to read.
 */
import { H, invalid, type StatsCapacities } from './layout.ts';
import { OVERFLOW_STAT, Registry, type Counter, type Gauge, type Histogram } from './registry.ts';
import type { GenerationEntry, GenerationUpdate } from './generations.ts';
import { SegmentSet, type ShrunkSegment, type StatsLimits, type StatsLogger } from './segment.ts';
import { OWNER_LOCK_WAIT_MS } from './segment-lock.ts';
import { readSample, readSnapshot, type StatSample } from './snapshot.ts';
import { Catalog, statKey, type TableUsage } from './table.ts';

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
    return readSnapshot(this.#catalog, filter);
  }

  /** One stat by name and labels, or undefined if nobody registered it. */
  sample(name: string, labels?: Record<string, string>): StatSample | undefined {
    return readSample(this.#catalog, statKey('counter', name, labels).key);
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

/** The supervisor's Stats: writer 0, plus the owner's duties. */
export class OwnerStats extends Stats {
  /** Pid of the dead owner whose stale segments were removed and re-initialised (0 if it was unknown); undefined when none were found. */
  readonly stalePid: number | undefined;
  readonly #inUse = new Set<number>();

  /** Use createSegment: this wraps a set it just created, and registers baton.stats.overflow first. */
  constructor(set: SegmentSet, stalePid: number | undefined, lockTimeoutMs?: number, soleWriter = false) {
    super(set, 0, lockTimeoutMs, soleWriter);
    this.stalePid = stalePid;
    this.counter(OVERFLOW_STAT);
  }

  /** Lowest writer index (1 to writers - 1) not handed out and not retired since; undefined when all are in use. */
  allocateWriter(): number | undefined {
    // A predecessor supervisor still draining its generations (an upgrade) holds the writers in the table.
    const held = new Set(this.generations().map((g) => g.writer));
    for (let w = 1; w < this.internals.set.layout.writers; w++) {
      if (!this.#inUse.has(w) && !held.has(w)) {
        this.#inUse.add(w);
        return w;
      }
    }
    return undefined;
  }

  /** After the process using writer w is gone (reaped, never before: its counters keep their totals in their handles): its counter and histogram slots move into `retired`, its gauge slots are zeroed, and w may be handed out again. */
  retireWriter(w: number): void {
    const { set, catalog } = this.internals;
    const { writers, regionCells } = set.layout;
    if (!Number.isInteger(w) || w < 1 || w >= writers) invalid(`writer must be an integer from 1 to ${writers - 1}, got ${w}`);
    catalog.sync();
    const descriptors = catalog.all();
    set.exclusive(() => {
      for (const d of descriptors) {
        const values = set.segments[d.segment]!.values;
        const slot = w * regionCells + d.cell;
        const retired = writers * regionCells + d.cell;
        for (let c = 0; c < d.cells; c++) {
          if (d.kind !== 'gauge') values[retired + c]! += values[slot + c]!;
          values[slot + c] = 0;
        }
      }
    });
    this.#inUse.delete(w);
  }

  /**
   * Retires every stat labelled `generation="<generation>"` (see reclaim.ts): its series leave
   * snapshots and its cells and arena room go to later registrations. Call only once no process
   * of that generation is alive — a live one's handles would write into cells reused by another
   * stat. Returns how many were retired; throws (retire later) when the registration lock is held
   * by a live process for over OWNER_LOCK_WAIT_MS.
   */
  retireGeneration(generation: number): number {
    if (!Number.isSafeInteger(generation) || generation < 0) invalid(`generation must be a non-negative integer, got ${generation}`);
    const { set, catalog } = this.internals;
    const label = String(generation);
    set.lock(OWNER_LOCK_WAIT_MS);
    try {
      catalog.sync();
      const gone = catalog.all().filter((d) => d.labels.generation === label);
      if (gone.length > 0) set.exclusive(() => catalog.retire(gone));
      catalog.sync();
      return gone.length;
    } finally {
      set.unlock();
    }
  }

  /** Writes generation-table entry `slot` (0 to generations - 1); state `free` clears it. */
  setGeneration(slot: number, entry: GenerationUpdate): void {
    this.internals.set.setGeneration(slot, entry);
  }

  /**
   * Checks every segment file is still as long as its mapping and, if another process cut one
   * short, sets its size back (what lay past the cut is lost: it reads as zero). Call before
   * each pass over the segments; returns the segments that were short.
   */
  checkSizes(): ShrunkSegment[] {
    return this.internals.set.checkSizes(true);
  }

  /** Unlinks every segment file (clean stop); handles keep working on the unlinked memory. */
  destroy(): void {
    this.internals.set.destroy();
  }
}

/** Creates an instance's segments for its supervisor; a stale set left by a dead owner is re-initialised (see stalePid, and a logger note). Throws ERR_INSTANCE_RUNNING when a live owner has them. */
export function createSegment(options: CreateSegmentOptions): OwnerStats {
  const { set, stalePid } = SegmentSet.create(options);
  if (stalePid !== undefined) {
    set.logger.info(`stats: re-initialised the stale segments of ${options.instance} left by dead pid ${stalePid || 'unknown'}`);
  }
  return new OwnerStats(set, stalePid, options.lockTimeoutMs, options.soleWriter);
}

/**
 * Takes over an instance's live segments from the supervisor upgrading to this process: values
 * carry on, and the writers its draining generations hold stay theirs until it retires them.
 * Refuses a segment of another hot-restart version (ERR_STATS_INCOMPATIBLE).
 */
export function adoptSegment(options: CreateSegmentOptions): OwnerStats {
  const set = SegmentSet.open(options);
  set.takeOwnership();
  return new OwnerStats(set, undefined, options.lockTimeoutMs);
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
