/**
 * The byte layout of a stats segment, shared by every process that maps one. Any change to an
 * offset, a field or the value-area order must bump LAYOUT_VERSION: the hot-restart version string
 * is how two Baton builds find out they disagree.
 *
 * A segment file is: header (page-rounded; segment 0's carries the global fields and the
 * generation table) | stat table (statsPerSegment × 32 bytes) | string arena (arenaBytes) |
 * value area. The value area is writer-major: `writers + 1` regions (writer 0 = the supervisor,
 * 1..writers-1 = generations, the last = `retired`) of `regionCells` Float64 cells each, so a
 * cell's slot for writer w is `values[w * regionCells + cell]` and two writers never share a
 * cache line.
 */
import { BatonError, type ErrorCode } from '../errors.ts';

/** "BATN" read as a little-endian Int32: the first word of every segment file. */
export const MAGIC = 0x4e544142;
/**
 * Version of the byte layout described here. 2: stat-table entries can be retired (kind FREE_KIND,
 * the `stamp` word, H.tableEpoch) and reused in place, which a version-1 reader would take for
 * damage or, worse, keep reading under the old name.
 */
export const LAYOUT_VERSION = 2;
/** Bytes per value slot (a Float64: exact integers up to 2^53). */
export const CELL_BYTES = 8;
/** Bytes per stat-table entry. */
export const ENTRY_BYTES = 32;
/** Bytes per generation-table entry. */
export const GENERATION_BYTES = 32;
/** Byte offset of the generation table inside the header. */
export const GENERATION_TABLE_OFFSET = 256;
/** Page size segments are rounded to. */
export const PAGE_BYTES = 4096;

/** Int32 indices of the header fields (byte offset / 4). Per-segment fields exist in every segment. */
export const H = {
  magic: 0,
  version: 1,
  headerBytes: 2,
  writers: 3,
  generations: 4,
  statsPerSegment: 5,
  cellsPerSegment: 6,
  arenaBytes: 7,
  /** Per segment: this file's k. */
  segmentIndex: 8,
  ownerPid: 9,
  /** Seqlock: odd while the owner moves values between slots or edits the generation table. */
  seq: 10,
  /** Registration lock: 0 or the holder's pid. */
  lock: 11,
  segmentCount: 12,
  maxSegments: 13,
  maxNameLength: 14,
  /** Per segment: published stat-table entries (stored last when registering). */
  statCount: 15,
  /** Per segment: arena bytes in use. */
  arenaUsed: 16,
  /** Per segment: value cells in use. */
  cellsUsed: 17,
  /** Segment 0: bumped after every entry retired or reused in any segment, so catalogs know to re-read entries they decoded (reclaim.ts). */
  tableEpoch: 18,
} as const;

/** Float64 indices of the header fields (byte offset / 8). */
export const HF = { segmentBytes: 10, createdAt: 11 } as const;

/**
 * Int32 offsets inside a stat-table entry. `help` (stat-help.ts) took a word that was always
 * zero, which reads as "no help": a build without it ignores the word and one with it reads the
 * older entries as having none, so LAYOUT_VERSION stayed 1.
 */
export const E = {
  kind: 0,
  keyOffset: 1,
  keyLength: 2,
  boundsOffset: 3,
  boundsCount: 4,
  cell: 5,
  help: 6,
  /** The entry's own seqlock: odd while a registration reuses it or the owner retires it, bumped by 2 each time (reclaim.ts). */
  stamp: 7,
} as const;

/** Stat kinds as stored in the table. */
export const KIND_CODES = { counter: 1, gauge: 2, histogram: 3 } as const;

/**
 * Kind code of a retired entry (a tombstone): its cells and arena bytes wait for a registration
 * of the same cell count to reuse them. In a tombstone `cell`/`boundsCount` are its first cell and
 * cell count, `boundsOffset`/`keyLength` its arena region and that region's size (see reclaim.ts).
 */
export const FREE_KIND = 4;

/** A stat kind. */
export type StatKind = keyof typeof KIND_CODES;

/** Kind name of a stored kind code, undefined for an unknown code. */
export function kindName(code: number): StatKind | undefined {
  return code === 1 ? 'counter' : code === 2 ? 'gauge' : code === 3 ? 'histogram' : undefined;
}

/** Generation states as stored in the generation table (index = code); `free` marks an unused entry. */
export const GENERATION_STATES = ['free', 'starting', 'ready', 'active', 'draining', 'exited'] as const;

/** State of a generation-table entry. */
export type GenerationState = (typeof GENERATION_STATES)[number];

/** Codes the stats library raises. `invalid` and `incompatible` stand in for ERR_STATS and ERR_STATS_INCOMPATIBLE until shared/errors.ts has them. */
export const STATS_ERR = {
  invalid: 'ERR_STATS',
  incompatible: 'ERR_STATS_INCOMPATIBLE',
  owned: 'ERR_INSTANCE_RUNNING',
} as const satisfies Record<string, ErrorCode>;

/** Sizes fixed when the owner creates the segment; every mapper must agree on them. */
export interface StatsCapacities {
  /** Writer slots per value: the supervisor (writer 0) and up to `writers - 1` live generations. @default 16 */
  writers?: number;
  /** Entries in the generation table. @default 16 */
  generations?: number;
  /** Stat descriptors per segment. @default 4096 */
  statsPerSegment?: number;
  /** Value cells per segment; a counter or gauge takes 1, a histogram with n bounds n + 3. @default 16384 */
  cellsPerSegment?: number;
  /** Bytes per segment for names, labels and histogram bounds. @default 262144 */
  arenaBytes?: number;
}

/** Defaults of StatsCapacities. */
export const DEFAULT_CAPACITIES: Readonly<Required<StatsCapacities>> = Object.freeze({
  writers: 16,
  generations: 16,
  statsPerSegment: 4096,
  cellsPerSegment: 16384,
  arenaBytes: 262144,
});

/** Where each part of a segment lives, derived from the capacities. */
export interface Layout extends Readonly<Required<StatsCapacities>> {
  readonly headerBytes: number;
  readonly tableOffset: number;
  readonly arenaOffset: number;
  readonly valuesOffset: number;
  /** Cells per writer region (cellsPerSegment rounded up to a 64-byte line). */
  readonly regionCells: number;
  /** Bytes of every segment file. */
  readonly segmentBytes: number;
  /** The hot-restart version string. */
  readonly version: string;
}

const LIMITS: Record<keyof StatsCapacities, [min: number, max: number]> = {
  writers: [2, 1024],
  generations: [1, 120],
  statsPerSegment: [1, 1 << 20],
  cellsPerSegment: [1, 1 << 22],
  arenaBytes: [64, 1 << 26],
};

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A segment that cannot be trusted: damaged contents, or a file at a segment's name Baton did not create. */
export class SegmentDamage extends BatonError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(STATS_ERR.invalid, message, options);
  }
}

/** Throws the stats library's invalid-argument error. */
export function invalid(message: string): never {
  throw new BatonError(STATS_ERR.invalid, `stats: ${message}`);
}

/** Capacities with defaults applied and checked (integers within bounds). */
export function resolveCapacities(options: StatsCapacities = {}): Required<StatsCapacities> {
  const out = { ...DEFAULT_CAPACITIES };
  for (const key of Object.keys(LIMITS) as (keyof StatsCapacities)[]) {
    const value = options[key] ?? DEFAULT_CAPACITIES[key];
    const [min, max] = LIMITS[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      invalid(`${key} must be an integer from ${min} to ${max}, got ${String(value)}`);
    }
    out[key] = value;
  }
  return out;
}

/** Hot-restart compatibility string, like Envoy's --hot-restart-version: two processes may share a segment only when theirs are equal. */
export function hotRestartVersion(options: StatsCapacities = {}): string {
  const c = resolveCapacities(options);
  return `baton.${LAYOUT_VERSION}.w${c.writers}.g${c.generations}.s${c.statsPerSegment}.c${c.cellsPerSegment}.a${c.arenaBytes}.cell${CELL_BYTES}`;
}

/** Offsets and sizes of a segment with these capacities. */
export function computeLayout(options: StatsCapacities = {}): Layout {
  const c = resolveCapacities(options);
  const headerBytes = roundUp(GENERATION_TABLE_OFFSET + c.generations * GENERATION_BYTES, PAGE_BYTES);
  const tableOffset = headerBytes;
  const arenaOffset = tableOffset + c.statsPerSegment * ENTRY_BYTES;
  const valuesOffset = roundUp(arenaOffset + roundUp(c.arenaBytes, 8), 64);
  const regionCells = roundUp(c.cellsPerSegment, 64 / CELL_BYTES);
  const segmentBytes = roundUp(valuesOffset + (c.writers + 1) * regionCells * CELL_BYTES, PAGE_BYTES);
  if (segmentBytes > 2 ** 31 - 1) invalid(`these capacities make a ${segmentBytes}-byte segment; the limit is 2 GiB`);
  return Object.freeze({ ...c, headerBytes, tableOffset, arenaOffset, valuesOffset, regionCells, segmentBytes, version: hotRestartVersion(c) });
}
