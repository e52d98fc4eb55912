/**
 * Retiring stats and reusing their room. Stats labelled by generation (the SDK's request stats)
 * get new names at every reload; without this, each one kept its table entry, cells and arena
 * bytes for the life of the segment, and a supervisor reloaded every 5 minutes reached maxBytes
 * in a month, after which new stats went unrecorded.
 *
 * Mechanism, and why:
 * - Only the owner retires, under the registration lock and the seqlock, and only once every
 *   process that could write the stats is gone (the supervisor knows: a generation's `exit`).
 *   Handles are plain stores into a writer slot with no check on the hot path, so a stat cannot be
 *   retired under a live writer; waiting for the exit makes that safe without touching handles.
 * - A retired entry becomes a tombstone in place (kind FREE_KIND) that still names its cells and
 *   its arena region. There is no linked free list: the table is untrusted memory, and a link
 *   would be one more pointer a scribbler could aim at a live stat or into a cycle. A registration
 *   (already under the lock, with the table decoded) picks the best-fitting tombstone of the same
 *   cell count, and checks its cells and region overlap no live stat and no other tombstone —
 *   a damaged tombstone is reported and left alone, never followed.
 * - Reuse rewrites an entry other processes have decoded, so each entry carries a stamp (a
 *   seqlock of its own: odd while written, +2 per change) and segment 0 an epoch bumped after
 *   every change: a catalog re-reads only entries whose stamp moved, and only when the epoch did.
 * - Cells are zeroed in every writer slot at retirement (and again at reuse), so a reused stat
 *   starts from 0. Totals that must carry on across generations (no generation label) are never
 *   retired.
 */
import { CELL_BYTES, E, ENTRY_BYTES, FREE_KIND, H, KIND_CODES, type Layout, type StatKind } from './layout.ts';
import type { Segment } from './files.ts';
import type { SegmentSet } from './segment.ts';
import type { Descriptor, Slot } from './table.ts';

/** Cells and arena room of an entry, as the overlap check sees it. */
export interface Footprint {
  readonly segment: number;
  readonly entry: number;
  readonly cell: number;
  readonly cells: number;
  /** Arena offset of its region (bounds, then key padded with NULs). */
  readonly region: number;
  readonly bytes: number;
}

/** A tombstone: room a registration with `cells` cells and up to `bytes` arena bytes may take. */
export interface FreeEntry extends Footprint {
  readonly free: true;
}

/** Int32 index of entry `index`'s first word. */
export function entryBase(layout: Layout, index: number): number {
  return (layout.tableOffset + index * ENTRY_BYTES) / 4;
}

/** Arena room an entry of `boundsCount` bounds and a `keyLength`-byte key takes: bounds, then the key rounded to 8. */
export function roomOf(boundsCount: number, keyLength: number): number {
  return boundsCount * CELL_BYTES + Math.ceil(keyLength / 8) * 8;
}

/** The tombstone at `index` of `segment`, or why it cannot be one (its fields are untrusted). */
export function decodeFree(segment: Segment, layout: Layout, index: number): FreeEntry | string {
  const { i32 } = segment;
  const at = entryBase(layout, index);
  const cell = i32[at + E.cell]!;
  const cells = i32[at + E.boundsCount]!;
  const region = i32[at + E.boundsOffset]!;
  const bytes = i32[at + E.keyLength]!;
  if (cells < 1 || cell < 0 || cell + cells > Math.min(layout.cellsPerSegment, i32[H.cellsUsed]!)) {
    return `retired entry names cells ${cell} to ${cell + cells - 1}, outside the ${i32[H.cellsUsed]} in use`;
  }
  if (region < 0 || region % 8 !== 0 || bytes < 0 || bytes % 8 !== 0 || region + bytes > Math.min(layout.arenaBytes, i32[H.arenaUsed]!)) {
    return `retired entry names arena bytes ${region} to ${region + bytes}, outside the ${i32[H.arenaUsed]} in use`;
  }
  return Object.freeze({ free: true as const, segment: segment.index, entry: index, cell, cells, region, bytes });
}

/** Why `free` must not be reused (it overlaps a live stat or another tombstone), or undefined. */
export function overlap(free: FreeEntry, others: Iterable<Footprint>): string | undefined {
  for (const o of others) {
    if (o.segment !== free.segment || o.entry === free.entry) continue;
    if (o.cell < free.cell + free.cells && free.cell < o.cell + o.cells) return `its cells overlap those of entry ${o.entry}`;
    if (o.bytes > 0 && free.bytes > 0 && o.region < free.region + free.bytes && free.region < o.region + o.bytes) {
      return `its arena bytes overlap those of entry ${o.entry}`;
    }
  }
  return undefined;
}

/**
 * The room a registration of `cells` cells and `needed` arena bytes takes (the caller holds the
 * lock, and `slots` are the decoded table): the tombstone with the least arena room that fits,
 * else one whose room is too small, given `needed` new bytes at the end of its segment's arena
 * (a longer key: generation 10 after 9), which this takes. A tombstone overlapping a live stat or
 * another tombstone is reported and dropped from `slots` (never followed); undefined when none fits.
 */
export function findRoom(set: SegmentSet, slots: Slot[][], cells: number, needed: number): FreeEntry | undefined {
  for (;;) {
    let best: FreeEntry | undefined;
    for (const segment of slots) {
      for (const slot of segment ?? []) {
        if (slot && 'free' in slot && slot.cells === cells && slot.bytes >= needed && (!best || slot.bytes < best.bytes)) best = slot;
      }
    }
    best ??= withFreshArena(set, slots, cells, needed);
    if (!best) return undefined;
    const others = (slots[best.segment] ?? []).filter((s): s is Descriptor | FreeEntry => s !== undefined);
    const why = overlap(best, others);
    if (why === undefined) return best;
    const offset = set.layout.tableOffset + best.entry * ENTRY_BYTES;
    set.report(`free ${best.segment} ${best.entry}`, `stats: did not reuse retired entry ${best.entry} (byte offset ${offset}) of segment ${best.segment} of ${set.instance}: ${why}`);
    slots[best.segment]![best.entry] = undefined; // until its entry changes
  }
}

function withFreshArena(set: SegmentSet, slots: Slot[][], cells: number, needed: number): FreeEntry | undefined {
  for (const segment of slots) {
    for (const slot of segment ?? []) {
      if (!slot || !('free' in slot) || slot.cells !== cells) continue;
      const { i32 } = set.segments[slot.segment]!;
      const used = i32[H.arenaUsed]!;
      if (used < 0 || used % 8 !== 0 || used + needed > set.layout.arenaBytes) continue;
      Atomics.store(i32, H.arenaUsed, used + needed);
      return { ...slot, region: used, bytes: needed };
    }
  }
  return undefined;
}

/** Runs `write` with entry `at`'s stamp odd, then moves it on by 2 in all. */
function stamped(i32: Int32Array, at: number, write: () => void): void {
  const stamp = Atomics.load(i32, at + E.stamp) & ~1;
  Atomics.store(i32, at + E.stamp, stamp + 1);
  try {
    write();
  } finally {
    Atomics.store(i32, at + E.stamp, (stamp + 2) & 0x7ffffffe);
  }
}

function zeroCells(segment: Segment, layout: Layout, cell: number, cells: number): void {
  for (let w = 0; w <= layout.writers; w++) segment.values.fill(0, w * layout.regionCells + cell, w * layout.regionCells + cell + cells);
}

/**
 * Turns a live entry into a tombstone, its cells zeroed in every slot (owner only, under the
 * registration lock and the seqlock, once nobody can write the stat). A region that is not the
 * contiguous bounds-then-key this code writes is not offered for reuse.
 */
export function writeTombstone(segment: Segment, layout: Layout, d: Footprint): void {
  const { i32 } = segment;
  const at = entryBase(layout, d.entry);
  stamped(i32, at, () => {
    zeroCells(segment, layout, d.cell, d.cells);
    i32[at + E.kind] = FREE_KIND;
    i32[at + E.cell] = d.cell;
    i32[at + E.boundsCount] = d.cells;
    i32[at + E.boundsOffset] = d.region;
    i32[at + E.keyOffset] = d.region;
    i32[at + E.keyLength] = d.bytes;
    i32[at + E.help] = 0;
  });
}

/** Writes a new stat into tombstone `free` (the caller holds the registration lock and checked it fits and overlaps nothing). */
export function reuseEntry(segment: Segment, layout: Layout, free: FreeEntry, kind: StatKind, key: Uint8Array, bounds: readonly number[]): void {
  const { i32, f64, u8 } = segment;
  const at = entryBase(layout, free.entry);
  const boundsBytes = bounds.length * CELL_BYTES;
  stamped(i32, at, () => {
    zeroCells(segment, layout, free.cell, free.cells);
    const start = layout.arenaOffset + free.region;
    u8.fill(0, start, start + free.bytes);
    f64.set(bounds, start / CELL_BYTES);
    u8.set(key, start + boundsBytes);
    i32[at + E.kind] = KIND_CODES[kind];
    i32[at + E.boundsOffset] = free.region;
    i32[at + E.boundsCount] = bounds.length;
    i32[at + E.keyOffset] = free.region + boundsBytes;
    // The NUL padding is part of the key's length, so the region keeps its size for the next reuse.
    i32[at + E.keyLength] = free.bytes - boundsBytes;
    i32[at + E.cell] = free.cell;
    i32[at + E.help] = 0;
  });
}

/** Tells every catalog that entries changed in place (after writeTombstone or reuseEntry). */
export function bumpEpoch(header: Int32Array): void {
  Atomics.add(header, H.tableEpoch, 1);
}
