/**
 * The child's side of memory tracking: every interval it samples process.memoryUsage(), V8's heap
 * spaces and glibc's malloc state, and writes them as gauges labelled `{writer}` (its slot, which generations reuse) into its slot
 * of the shared stats segment, where the supervisor (and `baton memory` when the supervisor is
 * wedged) reads them.
 */
import v8 from 'node:v8';
import { CHILD_FIGURES, gaugeName, largestFreeFromMallocInfo, type ChildMemory } from '../shared/memory-figures.ts';
import type { Gauge, Stats } from '../shared/stats/index.ts';

type Native = typeof import('../shared/native/native.ts');

let native: Native | null | undefined;

/** The native addon, or null when it cannot load (malloc figures are then -1). */
export async function loadNative(): Promise<Native | null> {
  if (native === undefined) {
    try {
      native = await import('../shared/native/native.ts');
    } catch {
      native = null;
    }
  }
  return native;
}

/** One sample of this process's memory. */
export function sampleMemory(addon: Native | null): ChildMemory {
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

/** Writes a sample every `intervalMs` into `stats`; the timer never keeps the process alive. */
export class MemoryReporter {
  private readonly gauges: Record<keyof ChildMemory, Gauge>;
  private timer: NodeJS.Timeout | undefined;

  private readonly generation: number;

  constructor(stats: Stats, generation: number, intervalMs: number) {
    this.generation = generation;
    // Labelled by writer slot, not generation: slots are reused, so reloads add no new stats.
    const labels = { writer: String(stats.writer ?? -1) };
    this.gauges = Object.fromEntries(CHILD_FIGURES.map((f) => [f, stats.gauge(gaugeName(f), labels)])) as Record<keyof ChildMemory, Gauge>;
    void loadNative().then((addon) => {
      this.write(addon);
      this.timer = setInterval(() => this.write(addon), intervalMs).unref();
    });
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private write(addon: Native | null): void {
    const m = { ...sampleMemory(addon), generation: this.generation };
    for (const f of CHILD_FIGURES) this.gauges[f].set(m[f]);
  }
}
