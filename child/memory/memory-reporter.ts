/**
 * The child's side of memory tracking: every interval it samples process.memoryUsage(), V8's heap
 * spaces and glibc's malloc state, and writes them as gauges labelled `{writer}` (its slot, which generations reuse) into its slot
 * of the shared stats segment, where the supervisor (and `baton memory` when the supervisor is
 * wedged) reads them.
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import {
  arenaMappings,
  CHILD_FIGURES,
  gaugeName,
  largestFreeFromMallocInfo,
  RUNTIME_FIGURES,
  runtimeGaugeName,
  splitFree,
  threadArenaSystem,
  type ChildMemory,
  type RuntimeHealth,
} from '../../shared/memory-figures.ts';
import { RuntimeWatch, type AfterGc } from './runtime-health.ts';
import type { Gauge, Stats } from '../../shared/stats/index.ts';

type Native = typeof import('../../shared/native/native.ts');

let native: Native | null | undefined;

/** The native addon, or null when it cannot load (malloc figures are then -1). */
export async function loadNative(): Promise<Native | null> {
  if (native === undefined) {
    try {
      native = await import('../../shared/native/native.ts');
    } catch {
      native = null;
    }
  }
  return native;
}

/** Bytes the allocator has handed out (jemalloc's allocated, or glibc's in-use + mmapped chunks); -1 when unknown. */
export function allocatorInUse(addon: Native | null): number {
  try {
    const je = addon?.jemallocStats();
    if (je) return je.allocated;
    const mi = addon?.mallinfo2();
    return mi ? mi.uordblks + mi.hblkhd : -1;
  } catch {
    return -1;
  }
}

/**
 * The arenas' resident bytes (mincore over `[heap]` and the thread arenas' heaps in /proc/self/maps),
 * or -1 when the thread heaps found do not add up to what malloc_info says the thread arenas hold.
 */
function residentArena(addon: Native, xml: string): number {
  const maps = arenaMappings(fs.readFileSync('/proc/self/maps', 'utf8'));
  const threads = maps.filter((m) => !m.main).reduce((a, m) => a + m.length, 0);
  if (threads !== threadArenaSystem(xml)) return -1;
  return maps.reduce((a, m) => a + addon.residentBytes(m.start, m.length), 0);
}

/** One sample of this process's memory (`afterGc`: the figures read right after the latest major GC). */
export function sampleMemory(addon: Native | null, afterGc?: AfterGc): ChildMemory {
  const usage = process.memoryUsage();
  let v8Committed = 0;
  let v8Used = 0;
  for (const space of v8.getHeapSpaceStatistics()) {
    v8Committed += space.space_size;
    v8Used += space.space_used_size;
  }
  const m: ChildMemory = {
    rss: usage.rss,
    heapTotal: usage.heapTotal,
    heapUsed: usage.heapUsed,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    v8Committed,
    v8Used,
    mallocArena: -1,
    mallocInUse: -1,
    mallocFree: -1,
    mallocFreeChunks: -1,
    mallocMmapped: -1,
    mallocLargestFree: -1,
    mallocFreeResident: -1,
    mallocReturned: -1,
    gcMajorCount: afterGc?.count ?? -1,
    gcAt: afterGc?.at ?? -1,
    gcHeapUsed: afterGc?.heapUsed ?? -1,
    gcExternal: afterGc?.external ?? -1,
    gcMallocInUse: afterGc?.mallocInUse ?? -1,
    jemallocAllocated: -1,
    jemallocActive: -1,
    jemallocResident: -1,
    jemallocRetained: -1,
    sampledAt: Date.now(),
    generation: 0,
  };
  if (addon) {
    try {
      // null where the libc lacks them (musl): those figures stay unknown
      const mi = addon.mallinfo2();
      if (mi) {
        m.mallocArena = mi.arena;
        m.mallocInUse = mi.uordblks;
        m.mallocFree = mi.fordblks;
        m.mallocFreeChunks = mi.ordblks;
        m.mallocMmapped = mi.hblkhd;
      }
      const xml = addon.mallocInfo();
      if (xml !== null) m.mallocLargestFree = largestFreeFromMallocInfo(xml);
      if (mi && xml !== null && !addon.jemallocStats()) {
        const resident = residentArena(addon, xml);
        if (resident >= 0) {
          const split = splitFree(mi.fordblks, mi.uordblks, resident);
          m.mallocFreeResident = split.resident;
          m.mallocReturned = split.returned;
        }
      }
    } catch {
      // malloc_info failed: the figures not yet set stay unknown
    }
    const je = addon.jemallocStats();
    if (je) {
      m.jemallocAllocated = je.allocated;
      m.jemallocActive = je.active;
      m.jemallocResident = je.resident;
      m.jemallocRetained = je.retained;
    }
  }
  return m;
}

/**
 * Intervals without a major GC after which the reporter runs one itself, if the heap grew since
 * the last: V8 may go minutes without one, and between them heap used is live objects plus the
 * garbage promoted to old space — which grows under load as steadily as a leak. Without after-GC
 * values the leak watch could only fit that sum (a loaded healthy generation read +58–90 MiB/min,
 * a starved leaking one +3 MiB/min of its 30).
 */
export const MEASURE_AFTER_INTERVALS = 5;
/** Set to `off` in a generation's environment: no measuring GCs (its heap is judged on minima). */
export const MEASURE_ENV = 'BATON_MEMORY_MEASURE_GC';
const MiB = 1024 * 1024;

/** Whether a measuring GC is due: none for `everyMs`, and heap used grew by ≥ max(1 MiB, 5 %) since the last. */
export function measureDue(now: number, last: { at: number; heapUsed: number } | undefined, startedAt: number, heapUsed: number, everyMs: number): boolean {
  if (now - (last?.at ?? startedAt) < everyMs) return false;
  return last === undefined || heapUsed - last.heapUsed >= Math.max(MiB, 0.05 * last.heapUsed);
}

/** Writes a sample every `intervalMs` into `stats`; the timer never keeps the process alive. */
export class MemoryReporter {
  private readonly gauges: Record<keyof ChildMemory, Gauge>;
  private readonly runtimeGauges: Record<keyof RuntimeHealth, Gauge>;
  private watch: RuntimeWatch | undefined;
  private timer: NodeJS.Timeout | undefined;

  private readonly generation: number;
  private readonly measureEveryMs: number;
  private readonly startedAt = Date.now();

  constructor(stats: Stats, generation: number, intervalMs: number) {
    this.generation = generation;
    this.measureEveryMs = process.env[MEASURE_ENV] === 'off' ? Infinity : MEASURE_AFTER_INTERVALS * intervalMs;
    // Labelled by writer slot, not generation: slots are reused, so reloads add no new stats.
    const labels = { writer: String(stats.writer ?? -1) };
    this.gauges = Object.fromEntries(CHILD_FIGURES.map((f) => [f, stats.gauge(gaugeName(f), labels)])) as Record<keyof ChildMemory, Gauge>;
    this.runtimeGauges = Object.fromEntries(RUNTIME_FIGURES.map((f) => [f, stats.gauge(runtimeGaugeName(f), labels)])) as Record<keyof RuntimeHealth, Gauge>;
    void loadNative().then((addon) => {
      this.watch = new RuntimeWatch(() => allocatorInUse(addon));
      this.write(addon);
      this.timer = setInterval(() => this.write(addon), intervalMs).unref();
    });
  }

  stop(): void {
    clearInterval(this.timer);
    this.watch?.stop();
  }

  private write(addon: Native | null): void {
    if (this.watch && measureDue(Date.now(), this.watch.afterGc, this.startedAt, v8.getHeapStatistics().used_heap_size, this.measureEveryMs)) this.watch.measure();
    const m = { ...sampleMemory(addon, this.watch?.afterGc), generation: this.generation };
    for (const f of CHILD_FIGURES) this.gauges[f].set(m[f]);
    if (this.watch) {
      const h = this.watch.sample(this.generation);
      for (const f of RUNTIME_FIGURES) this.runtimeGauges[f].set(h[f]);
    }
  }
}
