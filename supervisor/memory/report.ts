/** The views of a generation's memory series: what `/memory`, `baton memory` and `baton status` show. */
import { fragmentation } from '../../shared/memory-figures.ts';
import type { Figure, FigureSummary, MemoryPoint, MemorySeries } from './history.ts';

/** How `baton status` shows a generation's memory. */
export interface MemoryFlag {
  rss: number | null;
  slopeMiBPerMin: number | null;
  growing: boolean;
}

export interface GenerationMemory {
  generation: number;
  pid: number;
  exitedAt?: number;
  growing: boolean;
  summary: Partial<Record<Figure, FigureSummary>>;
  fragmentation: ReturnType<typeof fragmentation>;
  /** Envoy-style: allocated, heap size, free in heap, released (bytes; null when unknown). */
  allocator: { allocated: number | null; heapSize: number | null; freeInHeap: number | null; released: number };
  events: MemorySeries['events'];
}

const SUMMARY_FIGURES: Figure[] = [
  'rss', 'pss', 'privateDirty', 'anonymous', 'swap', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers',
  'mallocArena', 'mallocInUse', 'mallocFree', 'mallocMmapped', 'connections',
];

/** now/min/max/slope of the main figures over the window, fragmentation and the allocator summary. */
export function generationReport(s: MemorySeries, windowMs: number, growing: boolean, released: number): GenerationMemory {
  const summary: Partial<Record<Figure, FigureSummary>> = {};
  for (const f of SUMMARY_FIGURES) {
    const v = s.summary(f, windowMs);
    if (v) summary[f] = v;
  }
  const last = s.points().findLast((p) => p.mallocArena !== undefined) ?? ({} as Partial<MemoryPoint>);
  const known = (v: number | undefined): number | null => (v === undefined || v < 0 ? null : v);
  const inUse = known(last.mallocInUse);
  const arena = known(last.mallocArena);
  const mmapped = known(last.mallocMmapped);
  return {
    generation: s.generation,
    pid: s.pid,
    ...(s.exitedAt !== undefined ? { exitedAt: s.exitedAt } : {}),
    growing,
    summary,
    fragmentation: fragmentation(last),
    allocator: {
      allocated: inUse === null ? null : inUse + (mmapped ?? 0),
      heapSize: arena === null ? null : arena + (mmapped ?? 0),
      freeInHeap: known(last.mallocFree),
      released,
    },
    events: s.events,
  };
}
