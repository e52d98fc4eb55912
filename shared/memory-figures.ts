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
  /** Of `mallocFree`: bytes whose pages are resident (count in RSS), and bytes whose pages are not (trimmed with madvise, or never touched). */
  mallocFreeResident: number;
  mallocReturned: number;
  /** Major GCs seen so far, epoch ms of the last, and V8 heap used / external / malloc in use right after it. */
  gcMajorCount: number;
  gcAt: number;
  gcHeapUsed: number;
  gcExternal: number;
  gcMallocInUse: number;
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
  'mallocFreeResident',
  'mallocReturned',
  'gcMajorCount',
  'gcAt',
  'gcHeapUsed',
  'gcExternal',
  'gcMallocInUse',
  'jemallocAllocated',
  'jemallocActive',
  'jemallocResident',
  'jemallocRetained',
  'sampledAt',
  'generation',
] as const satisfies readonly (keyof ChildMemory)[];

/** `heapUsed` → `baton.memory.heap_used`. */
export function gaugeName(figure: keyof ChildMemory): string {
  return MEMORY_PREFIX + snake(figure);
}

function snake(name: string): string {
  return name.replace(/[A-Z0-9]+/g, (c) => `_${c.toLowerCase()}`);
}

/** Prefix of the runtime-health gauges a child writes (event loop, GC). */
export const RUNTIME_PREFIX = 'baton.runtime.';
export const RUNTIME_FILTER = /^baton\.runtime\./;

/** A generation's runtime health over the last reporting interval; -1 when unknown. */
export interface RuntimeHealth {
  /** Event-loop delay percentiles and maximum over the interval, ms (perf_hooks.monitorEventLoopDelay). */
  loopDelayP50: number;
  loopDelayP99: number;
  loopDelayMax: number;
  /** Event-loop utilization over the interval, 0..1. */
  loopUtilization: number;
  /** Cumulative GC pause time by kind since start, ms. */
  gcMinorMs: number;
  gcMajorMs: number;
  gcIncrementalMs: number;
  gcWeakcbMs: number;
  /** CPU time (user + system) since start, ms. */
  cpuMs: number;
  sampledAt: number;
  generation: number;
}

export const RUNTIME_FIGURES = [
  'loopDelayP50',
  'loopDelayP99',
  'loopDelayMax',
  'loopUtilization',
  'gcMinorMs',
  'gcMajorMs',
  'gcIncrementalMs',
  'gcWeakcbMs',
  'cpuMs',
  'sampledAt',
  'generation',
] as const satisfies readonly (keyof RuntimeHealth)[];

/** `loopDelayP99` → `baton.runtime.loop_delay_p99`. */
export function runtimeGaugeName(figure: keyof RuntimeHealth): string {
  return RUNTIME_PREFIX + snake(figure);
}

/** The children's runtime health from a stats snapshot, by writer slot. */
export function runtimeByWriter(samples: readonly GaugeSample[]): Map<string, Partial<RuntimeHealth>> {
  return figuresByWriter(samples, RUNTIME_FIGURES, runtimeGaugeName);
}

type GaugeSample = { name: string; kind: string; labels: Record<string, string>; value?: number };

/** The gauges named `nameOf(figure)` in a snapshot, gathered per writer slot as one object each. */
function figuresByWriter<F extends string>(samples: readonly GaugeSample[], figures: readonly F[], nameOf: (figure: F) => string): Map<string, Partial<Record<F, number>>> {
  const names = new Map(figures.map((f) => [nameOf(f), f]));
  const byWriter = new Map<string, Partial<Record<F, number>>>();
  for (const s of samples) {
    const figure = names.get(s.name);
    const writer = s.labels.writer;
    if (s.kind !== 'gauge' || !figure || writer === undefined || s.value === undefined) continue;
    byWriter.set(writer, { ...byWriter.get(writer), [figure]: s.value });
  }
  return byWriter;
}

/**
 * glibc's free memory split by residency: `free` (fordblks) is memory in free chunks, but
 * malloc_trim gives the whole pages inside them back with madvise(DONTNEED) while the chunks stay
 * on the free lists — so free is resident only up to what the arenas hold resident beyond the
 * bytes in use. `residentArena` is the arenas' resident bytes (mincore over their mappings).
 */
export function splitFree(free: number, inUse: number, residentArena: number): { resident: number; returned: number } {
  const resident = Math.max(0, Math.min(free, residentArena - inUse));
  return { resident, returned: Math.max(0, free - resident) };
}

/** glibc arena heaps in /proc/self/maps: the main arena's `[heap]` and the 64 MiB-aligned heaps of thread arenas. */
export function arenaMappings(maps: string): { start: number; length: number; main: boolean }[] {
  const HEAP_MAX = 64 * 1024 * 1024;
  const rows = maps.split('\n').flatMap((line) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$/.exec(line);
    return m ? [{ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]!, name: m[4]!.trim() }] : [];
  });
  const out: { start: number; length: number; main: boolean }[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.name === '[heap]') out.push({ start: r.start, length: r.end - r.start, main: true });
    else if (r.name === '' && r.perms === 'rw-p' && r.start % HEAP_MAX === 0) {
      // A thread arena's heap: read-write from an aligned start, the rest of its 64 MiB reserved (---p).
      const next = rows[i + 1];
      const end = next && next.name === '' && next.perms === '---p' && next.start === r.end ? next.end : r.end;
      if (end === r.start + HEAP_MAX) out.push({ start: r.start, length: r.end - r.start, main: false });
    }
  }
  return out;
}

/** Σ `<system type="current">` of malloc_info's heaps other than the main arena (nr 0): what thread arenas hold. */
export function threadArenaSystem(xml: string): number {
  let total = 0;
  for (const h of xml.matchAll(/<heap nr="(\d+)">([\s\S]*?)<\/heap>/g)) {
    if (h[1] === '0') continue;
    const m = /<system type="current" size="(\d+)"\/>/.exec(h[2]!);
    if (m) total += Number(m[1]);
  }
  return total;
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
export function childFiguresByWriter(samples: readonly GaugeSample[]): Map<string, Partial<ChildMemory>> {
  return figuresByWriter(samples, CHILD_FIGURES, gaugeName) as Map<string, Partial<ChildMemory>>;
}
