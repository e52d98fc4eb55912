/**
 * Memory figures both sides agree on: the environment that starts the child's reporter, the names
 * of the gauges it writes into its slot of the shared stats segment (labelled `{writer}`: slots are reused, so reloads add no stats; the `generation` gauge says whose figures they are), and
 * the fragmentation ratios derived from them (explained in docs/memory.md).
 */

/** Prefix of every memory gauge a child writes. */
export const MEMORY_PREFIX = 'baton.memory.';
/** Selects the memory gauges in a stats snapshot. */
export const MEMORY_FILTER = /^baton\.memory\./;

/** The child's figures, in bytes (counts for `mallocFreeChunks`); -1 when unknown. */
export interface ChildMemory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** V8: bytes committed for every heap space, and bytes of live objects in them. */
  v8Committed: number;
  v8Used: number;
  /** glibc mallinfo2: main-arena bytes from the kernel (sbrk), in use, free, free chunks, mmapped. */
  mallocArena: number;
  mallocInUse: number;
  mallocFree: number;
  mallocFreeChunks: number;
  mallocMmapped: number;
  /** Upper bound of the largest non-empty free bin malloc_info lists (bytes); -1 when unknown. */
  mallocLargestFree: number;
  /** jemalloc (allocator: jemalloc): bytes allocated by the app, in active pages, resident, retained; -1 without it. */
  jemallocAllocated: number;
  jemallocActive: number;
  jemallocResident: number;
  jemallocRetained: number;
  /** Epoch ms of the sample. */
  sampledAt: number;
  /** The generation writing these figures (they are labelled by writer slot, which generations reuse). */
  generation: number;
}

export const CHILD_FIGURES = [
  'rss',
  'heapTotal',
  'heapUsed',
  'external',
  'arrayBuffers',
  'v8Committed',
  'v8Used',
  'mallocArena',
  'mallocInUse',
  'mallocFree',
  'mallocFreeChunks',
  'mallocMmapped',
  'mallocLargestFree',
  'jemallocAllocated',
  'jemallocActive',
  'jemallocResident',
  'jemallocRetained',
  'sampledAt',
  'generation',
] as const satisfies readonly (keyof ChildMemory)[];

/** `heapUsed` → `baton.memory.heap_used`. */
export function gaugeName(figure: keyof ChildMemory): string {
  return MEMORY_PREFIX + figure.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export interface Fragmentation {
  /** V8 heap: share of committed heap-space bytes not holding live objects, 1 − used / committed. */
  v8: number | null;
  /** malloc: share of the main arena that is free yet still held from the kernel, free / arena. */
  malloc: number | null;
  /**
   * malloc free-space scatter: 1 − largest free chunk / free bytes. Near 0: the free space is one
   * block (trim can return it); near 1: many small holes no large request can use.
   */
  mallocScatter: number | null;
}

/** The fragmentation ratios derived from a child's figures (null where an input is unknown or 0). */
export function fragmentation(m: Partial<ChildMemory>): Fragmentation {
  const ratio = (num: number | undefined, den: number | undefined): number | null =>
    num === undefined || den === undefined || num < 0 || den <= 0 ? null : Math.max(0, Math.min(1, num / den));
  const used = ratio(m.v8Used, m.v8Committed);
  const largest = ratio(m.mallocLargestFree, m.mallocFree);
  return {
    v8: used === null ? null : 1 - used,
    malloc: ratio(m.mallocFree, m.mallocArena),
    mallocScatter: largest === null ? null : 1 - largest,
  };
}

/**
 * The largest free chunk glibc's malloc_info can tell: the upper bound (`to`) of the largest
 * non-empty size bin over every arena (bins are ranges, so this is a bound, not an exact size).
 */
export function largestFreeFromMallocInfo(xml: string): number {
  let largest = -1;
  for (const m of xml.matchAll(/<size from="(\d+)" to="(\d+)" total="(\d+)" count="(\d+)"\/>/g)) {
    const count = Number(m[4]);
    if (count === 0) continue;
    // The last bin's `to` can be huge (unbounded); a bin's mean chunk size is then the better bound.
    const upper = Math.min(Number(m[2]), Number(m[3]));
    if (upper > largest) largest = upper;
  }
  return largest;
}

/**
 * The children's figures from a stats snapshot, by writer slot; `generation` says whose they are
 * (0 once the slot's generation was reaped).
 */
export function childFiguresByWriter(samples: readonly { name: string; kind: string; labels: Record<string, string>; value?: number }[]): Map<string, Partial<ChildMemory>> {
  const names = new Map(CHILD_FIGURES.map((f) => [gaugeName(f), f]));
  const byWriter = new Map<string, Partial<ChildMemory>>();
  for (const s of samples) {
    const figure = names.get(s.name);
    const writer = s.labels.writer;
    if (s.kind !== 'gauge' || !figure || writer === undefined || s.value === undefined) continue;
    byWriter.set(writer, { ...byWriter.get(writer), [figure]: s.value });
  }
  return byWriter;
}
