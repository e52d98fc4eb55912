/**
 * SegmentSet: one process's view of an instance's segments. Creates them for the owner (claiming
 * segment 0 from a live or stale previous owner: owner-claim.ts, passed in by owner-stats.ts),
 * opens them for the others, maps what others add, grows the set, removes it; fronts the locks
 * (segment-lock.ts) and the generation table (generations.ts) in segment 0. What only the owner
 * does (the claim, the size checks of shrink.ts) is not imported here: a generation maps the set
 * with this module and loads no more than it uses (issue #19).
 */
import fs from 'node:fs';
import { BatonError } from '../errors.ts';
import { DEFAULT_DIR, checkInstance, closeSegment, createFile, listSegmentFiles, mapFile, sameSet, segmentPath, removeOwn, type Segment } from './files.ts';
import { generationWriter, readGenerations, type GenerationEntry, type GenerationUpdate } from './generations.ts';
import { H, HF, STATS_ERR, computeLayout, invalid, type Layout, type StatsCapacities } from './layout.ts';
import type { claimSegmentZero } from './owner-claim.ts';
import { OWNER_LOCK_WAIT_MS, SegmentLocks } from './segment-lock.ts';

export type { ShrunkSegment } from './shrink.ts';
/** Most segment files a set may have, whatever segment 0's header claims. */
const MAX_SEGMENTS = 4096;

/** Receives notes (a stale segment re-initialised, a lock stolen) and the overflow warning; pino loggers fit. */
export interface StatsLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Default logger: warnings go to process.emitWarning, notes are dropped. */
export const defaultLogger: StatsLogger = {
  info() {},
  warn(message) {
    process.emitWarning(message, 'BatonStatsWarning');
  },
};

/** Limits the owner records in segment 0 for every process. */
export interface StatsLimits {
  /** Total bytes of all segment files of the instance; registrations beyond are counted in baton.stats.overflow. @default 67108864 */
  maxBytes?: number;
  /** Longest name plus labels, as stored (UTF-8 bytes of the JSON key); longer ones are counted in baton.stats.overflow. @default 1024 */
  maxNameLength?: number;
}

const CAPACITY_KEYS = ['writers', 'generations', 'statsPerSegment', 'cellsPerSegment', 'arenaBytes'] as const;

/** The mapped segments of one instance, as seen by one process. */
export class SegmentSet {
  readonly dir: string;
  readonly instance: string;
  readonly layout: Layout;
  readonly segments: Segment[];
  readonly logger: StatsLogger;
  readonly #locks: SegmentLocks;
  #closed = false;
  /** Damage already reported, so a damaged segment warns once, not at every read. */
  readonly #reported = new Set<string>();

  private constructor(dir: string, instance: string, layout: Layout, first: Segment, logger: StatsLogger) {
    this.dir = dir;
    this.instance = instance;
    this.layout = layout;
    this.segments = [first];
    this.logger = logger;
    this.#locks = new SegmentLocks(first.i32, first.ino, instance, logger, (what, message) => this.report(what, message));
  }

  /** Segment 0's Int32 view: the global header fields. */
  get header(): Int32Array {
    return this.segments[0]!.i32;
  }

  /** Creates segment 0 for the owner with `claim` (owner-claim.ts); a stale set (owner pid gone) is removed first and its pid returned. */
  static create(
    options: { instance: string; dir?: string; logger?: StatsLogger } & StatsCapacities & StatsLimits,
    claim: typeof claimSegmentZero,
  ): { set: SegmentSet; stalePid: number | undefined } {
    checkInstance(options.instance);
    const dir = options.dir ?? DEFAULT_DIR;
    const layout = computeLayout(options);
    const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    const maxNameLength = options.maxNameLength ?? 1024;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < layout.segmentBytes) {
      invalid(`maxBytes must be at least one segment (${layout.segmentBytes} bytes with these capacities), got ${maxBytes}`);
    }
    if (!Number.isInteger(maxNameLength) || maxNameLength < 32 || maxNameLength > layout.arenaBytes) {
      invalid(`maxNameLength must be an integer from 32 to arenaBytes (${layout.arenaBytes}), got ${maxNameLength}`);
    }
    const init = (s: Segment) => {
      Atomics.store(s.i32, H.ownerPid, process.pid);
      s.i32[H.maxSegments] = Math.floor(maxBytes / layout.segmentBytes);
      s.i32[H.maxNameLength] = maxNameLength;
      s.f64[HF.createdAt] = Date.now();
      Atomics.store(s.i32, H.segmentCount, 1);
    };
    const { segment, stalePid } = claim(dir, options.instance, layout, init);
    return { set: new SegmentSet(dir, options.instance, layout, segment, options.logger ?? defaultLogger), stalePid };
  }

  /**
   * Maps the segments of an existing instance. With capacities in `options`, refuses a segment
   * whose hot-restart version differs from theirs; without, adopts the capacities in its header
   * (the layout version is checked either way).
   */
  static open(options: { instance: string; dir?: string; logger?: StatsLogger } & StatsCapacities): SegmentSet {
    checkInstance(options.instance);
    const dir = options.dir ?? DEFAULT_DIR;
    const file = segmentPath(dir, options.instance, 0);
    const explicit = CAPACITY_KEYS.some((k) => options[k] !== undefined);
    let mapped: { segment: Segment; layout: Layout };
    try {
      mapped = mapFile(file, 0, explicit ? computeLayout(options) : undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new BatonError(STATS_ERR.invalid, `stats: no segment ${file} for instance "${options.instance}" (is its supervisor running?)`, {
        cause: err,
      });
    }
    const set = new SegmentSet(dir, options.instance, mapped.layout, mapped.segment, options.logger ?? defaultLogger);
    set.refresh();
    return set;
  }

  /** Paths of the mapped segment files. */
  get files(): string[] {
    return this.segments.map((s) => segmentPath(this.dir, this.instance, s.index));
  }

  /**
   * Maps segments other processes added since the last call; true when there were any. Stops
   * quietly at a file that is gone or belongs to another set (ours was destroyed or replaced by a
   * new owner): what is mapped keeps working.
   */
  refresh(): boolean {
    const claimed = Atomics.load(this.header, H.segmentCount);
    const count = Math.min(claimed, MAX_SEGMENTS);
    if (claimed !== count) this.report('count', `stats: segment 0 of ${this.instance} claims ${claimed} segments, over ${MAX_SEGMENTS}: mapping at most ${MAX_SEGMENTS}`);
    const before = this.segments.length;
    for (let k = before; k < count; k++) {
      let segment: Segment;
      const file = segmentPath(this.dir, this.instance, k);
      try {
        segment = mapFile(file, k, this.layout).segment;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || !this.#stillOurs()) break;
        // A damaged or planted file: what is mapped keeps working, the rest of the set is skipped.
        this.report(`map ${k}`, `stats: skipped segments ${k} to ${count - 1} of ${this.instance}: ${(err as Error).message}`);
        break;
      }
      if (!sameSet(this.segments[0]!, segment)) {
        closeSegment(segment);
        break;
      }
      this.segments.push(segment);
    }
    return this.segments.length > before;
  }

  /** Warns about a kind of damage once (keyed by `what`), so a damaged segment does not flood the log. */
  report(what: string, message: string): void {
    if (this.#reported.has(what)) return;
    this.#reported.add(what);
    this.logger.warn(message);
  }

  /** True once destroy() unmapped the set. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Adds segment k+1 (the caller holds the registration lock); undefined when maxBytes allows no more or the set was destroyed or replaced. */
  grow(): Segment | undefined {
    this.refresh();
    const k = this.segments.length;
    if (k !== Atomics.load(this.header, H.segmentCount) || k >= this.header[H.maxSegments]! || !this.#stillOurs()) return undefined;
    const file = segmentPath(this.dir, this.instance, k);
    // A file here was left by a holder that died between creating it and publishing the count.
    removeOwn(file);
    const first = this.segments[0]!;
    const segment = createFile(file, this.layout, k, (s) => {
      s.i32[H.ownerPid] = first.i32[H.ownerPid]!;
      s.f64[HF.createdAt] = first.f64[HF.createdAt]!;
    });
    this.segments.push(segment);
    Atomics.store(this.header, H.segmentCount, k + 1);
    return segment;
  }

  /** True while segment 0's path still names the file this process mapped. */
  #stillOurs(): boolean {
    const first = this.segments[0]!;
    try {
      const stat = fs.statSync(segmentPath(this.dir, this.instance, 0));
      return stat.ino === first.ino && stat.dev === first.dev;
    } catch {
      return false;
    }
  }

  /**
   * Takes the registration lock, stealing it from a holder that is dead or does not map the
   * segment (noted in the log); throws after timeoutMs on a live one that maps it, and at once
   * when the holder it last gave up on still holds it.
   */
  lock(timeoutMs = 1_000): void {
    this.#locks.lock(timeoutMs);
  }

  /** True while this process holds the registration lock (taken by lock()). */
  get locked(): boolean {
    return this.#locks.locked;
  }

  /** Releases the registration lock taken by lock(). */
  unlock(): void {
    this.#locks.unlock();
  }

  /**
   * Runs `write` with the seqlock odd, so readers retry. The registration lock is taken too:
   * during an upgrade two supervisors own the segment, and seqlock writers must not overlap.
   */
  exclusive(write: () => void): void {
    this.#locks.exclusive(write);
  }

  /** Records this process as the owner (the supervisor an upgrade hands over to). */
  takeOwnership(): void {
    Atomics.store(this.header, H.ownerPid, process.pid);
  }

  /** Runs `read` until it ran while no owner write was in progress (see seqRead). */
  consistent<T>(read: () => T): T {
    return this.#locks.consistent(read);
  }

  /** The non-free entries of the generation table. */
  generations(): GenerationEntry[] {
    const { i32, f64 } = this.segments[0]!;
    const damaged: string[] = [];
    const entries = this.consistent(() => {
      damaged.length = 0;
      return readGenerations(i32, f64, this.layout, (why) => damaged.push(why));
    });
    for (const why of damaged) this.report(`generation ${why}`, `stats: skipped a damaged generation-table entry of ${this.instance}: ${why}`);
    return entries;
  }

  /** Writes generation-table entry `slot` under the seqlock (owner only); state `free` clears it. */
  setGeneration(slot: number, entry: GenerationUpdate): void {
    const { i32, f64 } = this.segments[0]!;
    this.exclusive(generationWriter(i32, f64, this.layout, slot, entry));
  }

  /** Unlinks every segment file of the instance (owner, on a clean stop) after forbidding growth, so no process adds a file afterwards. Mappings stay valid until collected. */
  destroy(): void {
    let locked = true;
    try {
      this.lock(2 * OWNER_LOCK_WAIT_MS);
    } catch {
      locked = false; // a live process wedged in registration: remove the files anyway
    }
    Atomics.store(this.header, H.maxSegments, 0);
    if (locked) this.unlock();
    for (const file of listSegmentFiles(this.dir, this.instance)) {
      try {
        removeOwn(file);
      } catch (err) {
        this.logger.warn((err as Error).message); // another user's file: left alone, the rest removed
      }
    }
    this.#closed = true;
    for (const s of this.segments) closeSegment(s);
  }
}
