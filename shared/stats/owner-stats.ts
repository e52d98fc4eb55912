/**
 * The owner's side of the stats (the supervisor, writer 0): creating or adopting an instance's
 * segments, handing out and retiring writer slots, retiring a generation's stats, the generation
 * table and the size checks. Apart from stats.ts so that a generation, which only opens the
 * segments, does not load this nor the claim and size-check modules it needs (issue #19).
 */
import { segmentPath } from './files.ts';
import { invalid } from './layout.ts';
import { claimSegmentZero } from './owner-claim.ts';
import { OVERFLOW_STAT } from './registry.ts';
import type { GenerationUpdate } from './generations.ts';
import { SegmentSet, type ShrunkSegment } from './segment.ts';
import { OWNER_LOCK_WAIT_MS } from './segment-lock.ts';
import { findShrunk } from './shrink.ts';
import { Stats, type CreateSegmentOptions } from './stats.ts';

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
    const { set } = this.internals;
    if (set.closed) return [];
    return findShrunk(set.segments, set.layout, (k) => segmentPath(set.dir, set.instance, k), true, set.logger);
  }

  /** Unlinks every segment file (clean stop); handles keep working on the unlinked memory. */
  destroy(): void {
    this.internals.set.destroy();
  }
}

/** Creates an instance's segments for its supervisor; a stale set left by a dead owner is re-initialised (see stalePid, and a logger note). Throws ERR_INSTANCE_RUNNING when a live owner has them. */
export function createSegment(options: CreateSegmentOptions): OwnerStats {
  const { set, stalePid } = SegmentSet.create(options, claimSegmentZero);
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
