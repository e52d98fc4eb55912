/** The views of a generation's memory series: what `/memory`, `baton memory` and `baton status` show. */
import { fragmentation } from '../../shared/memory-figures.ts';
import type { Figure, FigureSummary, MemoryPoint, MemorySeries } from './history.ts';
import type { LeakFinding } from './leak-detect.ts';

/** How `baton status` shows a generation's memory. */
export interface MemoryFlag {
  rss: number | null;
  slopeMiBPerMin: number | null;
  growing: boolean;
  /** The leak watch's one-line finding: which figure grows, the others' state. */
  finding?: string;
  /** Event-loop delay p50/p99 (ms) and utilization (0..1) over the last interval, CPU ms since start. */
  loopDelayP50?: number;
  loopDelayP99?: number;
  loopUtilization?: number;
  cpuMs?: number;
  /** V8 heap used at the last sample, bytes. */
  heapUsed?: number;
}

/** The allocator's figures, bytes; null when this allocator cannot tell (never 0 for unknown). */
export interface AllocatorFigures {
  kind: 'glibc' | 'jemalloc' | null;
  /** Bytes handed out to the program (glibc: in use + mmapped; jemalloc: allocated). */
  allocated: number | null;
  /** glibc: arena + mmapped; jemalloc: active (pages with live allocations). */
  heapSize: number | null;
  /** Free but resident: counts in RSS (glibc: free chunks' resident pages; jemalloc: resident − allocated). */
  freeInHeap: number | null;
  /** Free and given back to the kernel (glibc: free chunks' pages madvised away or never touched; jemalloc: retained). */
  returned: number | null;
  /** jemalloc only: allocated, active, resident, retained. */
  jemalloc: { allocated: number; active: number; resident: number; retained: number } | null;
  /** Bytes of RSS released by soft-limit and on-request releases. */
  released: number;
}

export interface GenerationMemory {
  generation: number;
  pid: number;
  exitedAt?: number;
  growing: boolean;
  summary: Partial<Record<Figure, FigureSummary>>;
  fragmentation: ReturnType<typeof fragmentation>;
  allocator: AllocatorFigures;
  events: MemorySeries['events'];
  leak?: LeakFinding;
}

const SUMMARY_FIGURES: Figure[] = [
  'rss', 'pss', 'privateDirty', 'anonymous', 'swap', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers',
  'v8Committed', 'v8Used', 'gcHeapUsed', 'mallocArena', 'mallocInUse', 'mallocFree', 'mallocFreeResident', 'mallocReturned',
  'mallocMmapped', 'jemallocAllocated', 'jemallocActive', 'jemallocResident', 'jemallocRetained', 'connections',
];

/** now/min/max/slope of the main figures over the window, fragmentation and the allocator summary. */
export function generationReport(s: MemorySeries, windowMs: number, growing: boolean, released: number, leak?: LeakFinding): GenerationMemory {
  const summary: Partial<Record<Figure, FigureSummary>> = {};
  for (const f of SUMMARY_FIGURES) {
    const v = s.summary(f, windowMs);
    if (v) summary[f] = v;
  }
  const last = s.points().findLast((p) => p.mallocArena !== undefined || p.jemallocAllocated !== undefined) ?? ({} as Partial<MemoryPoint>);
  return {
    generation: s.generation,
    pid: s.pid,
    ...(s.exitedAt !== undefined ? { exitedAt: s.exitedAt } : {}),
    growing,
    summary,
    fragmentation: fragmentation(last),
    allocator: allocatorFigures(last, released),
    events: s.events,
    ...(leak ? { leak } : {}),
  };
}

/** The allocator summary of one point: jemalloc's own figures under jemalloc, glibc's otherwise. */
export function allocatorFigures(p: Partial<MemoryPoint>, released: number): AllocatorFigures {
  const known = (v: number | undefined): number | null => (v === undefined || v < 0 ? null : v);
  const jeAllocated = known(p.jemallocAllocated);
  if (jeAllocated !== null) {
    const active = known(p.jemallocActive) ?? 0;
    const resident = known(p.jemallocResident) ?? 0;
    const retained = known(p.jemallocRetained) ?? 0;
    return {
      kind: 'jemalloc',
      allocated: jeAllocated,
      heapSize: active,
      freeInHeap: Math.max(0, resident - jeAllocated),
      returned: retained,
      jemalloc: { allocated: jeAllocated, active, resident, retained },
      released,
    };
  }
  const inUse = known(p.mallocInUse);
  const arena = known(p.mallocArena);
  const mmapped = known(p.mallocMmapped);
  return {
    kind: inUse === null ? null : 'glibc',
    allocated: inUse === null ? null : inUse + (mmapped ?? 0),
    heapSize: arena === null ? null : arena + (mmapped ?? 0),
    freeInHeap: known(p.mallocFreeResident),
    returned: known(p.mallocReturned),
    jemalloc: null,
    released,
  };
}
