/**
 * Leak detection on what is live, as a pure function of a generation's recent points: each live
 * figure (V8 heap used right after major GCs, external memory, malloc in use) gets its own robust
 * slope over its lower envelope, so a GC sawtooth, a warm-up that levels off, or memory an
 * allocator holds but does not use (committed-but-free) is never called a leak. RSS is judged the
 * same way only when the generation reports no figures of its own (a non-SDK program).
 */
import type { MemoryPoint } from './history.ts';

/** How steady and how large growth must be to count (the `memory.growth` settings). */
export interface LeakSettings {
  /** Bytes per minute, for the whole span and for its recent half. */
  minSlope: number;
  /** Bytes the fitted line must climb across the span. */
  minGrowth: number;
  /** r² of the least-squares fit of the envelope. */
  minR2: number;
  /** Flat load: the connections' trend stays within this share of their mean (or 2). */
  loadTolerance: number;
  /** Span looked at (ms): the newest `window` of points. */
  window: number;
  /** Shortest span judged (ms). @default min(90 s, window / 2) */
  minSpan?: number;
}

export type TrendName = 'heap' | 'external' | 'malloc' | 'rss' | 'v8Free' | 'mallocFree';

/** One figure's trend over the window. */
export interface Trend {
  figure: TrendName;
  label: string;
  /** Theil–Sen slope, bytes per minute. */
  slopePerMin: number;
  /** Slope over the newest half of the span, bytes per minute. */
  recentSlopePerMin: number;
  /** Fitted growth across the span, bytes. */
  growth: number;
  spanMs: number;
  /** Points of the envelope the slope was fitted to. */
  samples: number;
  /** `after-gc`: values read right after major GCs; `minima`: the lowest value of each time bucket. */
  basis: 'after-gc' | 'minima';
  r2: number;
  growing: boolean;
}

export interface LeakFinding {
  /** A live figure grows steadily under flat load. */
  growing: boolean;
  loadFlat: boolean;
  /** Live figures (or RSS alone for a program that reports none). */
  live: Trend[];
  /** Memory held but not in use: growth here is shown, never a leak. */
  committed: Trend[];
  /** Rss, for context. */
  rss: Trend | undefined;
  /** One line: which figure grows and how fast, the others' state. */
  message: string;
}

const MiB = 1024 * 1024;

const LIVE: { figure: TrendName; label: string; afterGc: keyof MemoryPoint; sampled: (p: MemoryPoint) => number | undefined }[] = [
  { figure: 'heap', label: 'V8 heap after GC', afterGc: 'gcHeapUsed', sampled: (p) => p.heapUsed },
  { figure: 'external', label: 'external', afterGc: 'gcExternal', sampled: (p) => p.external },
  { figure: 'malloc', label: 'malloc in use', afterGc: 'gcMallocInUse', sampled: mallocInUse },
];

/** Bytes the allocator has handed out: jemalloc's `allocated`, or glibc's in-use + mmapped chunks. */
export function mallocInUse(p: Partial<MemoryPoint>): number | undefined {
  if (known(p.jemallocAllocated)) return p.jemallocAllocated;
  if (!known(p.mallocInUse)) return undefined;
  return p.mallocInUse! + (known(p.mallocMmapped) ? p.mallocMmapped! : 0);
}

function known(v: number | undefined): v is number {
  return typeof v === 'number' && v >= 0;
}

/** Judges the newest `window` of `points` (oldest first). */
export function detectLeak(points: readonly MemoryPoint[], s: LeakSettings): LeakFinding {
  const newest = points.at(-1)?.t ?? 0;
  const pts = points.filter((p) => p.t >= newest - s.window);
  const minSpan = s.minSpan ?? Math.min(90_000, s.window / 2);
  const bucket = Math.max(minSpan / 6, 2 * medianStep(pts));
  const loadFlat = isLoadFlat(pts, s.loadTolerance);
  const live: Trend[] = [];
  for (const f of LIVE) {
    const valleys = afterGc(pts, f.afterGc);
    const enough = valleys.length >= 4 && spanOf(valleys) >= minSpan / 2;
    const series = enough ? valleys : minima(pts.map((p) => [p.t, f.sampled(p)]), bucket);
    // Named by what was fitted: "after GC" only when it was (a minima fit was once read as after-GC values).
    const basis = enough ? 'after-gc' : 'minima';
    const t = trend(f.figure, basis === 'minima' && f.figure === 'heap' ? 'V8 heap used (lowest)' : f.label, series, basis, s, minSpan);
    // Major GCs come regularly (V8's or the reporter's measuring ones) but are still too few: minima are
    // live plus the garbage since the last GC, so they may be shown, not flagged, until the after-GC values can be judged.
    if (t && !enough && valleys.length >= 2 && newest - valleys.at(-1)![0] <= minSpan / 2) t.growing = false;
    if (t) live.push(t);
  }
  const rss = trend('rss', 'RSS', minima(pts.map((p) => [p.t, p.rss]), bucket), 'minima', s, minSpan);
  const judged = live.length > 0 ? live : rss ? [rss] : [];
  const committed: Trend[] = [];
  const v8Free = trend('v8Free', 'V8 committed but free', minima(pts.map((p) => [p.t, diff(p.v8Committed, p.v8Used)]), bucket), 'minima', s, minSpan);
  if (v8Free) committed.push(v8Free);
  const freeResident = (p: MemoryPoint): number | undefined => (known(p.mallocFreeResident) ? p.mallocFreeResident : known(p.mallocFree) ? p.mallocFree : undefined);
  const mallocFree = trend('mallocFree', 'malloc free (resident)', minima(pts.map((p) => [p.t, freeResident(p)]), bucket), 'minima', s, minSpan);
  if (mallocFree) committed.push(mallocFree);
  const growing = loadFlat && judged.some((t) => t.growing);
  return { growing, loadFlat, live: judged, committed, rss, message: describe(judged, committed, growing, loadFlat) };
}

function diff(a: number | undefined, b: number | undefined): number | undefined {
  return known(a) && known(b) ? Math.max(0, a - b) : undefined;
}

/** A trend of `series` ([t, bytes], oldest first); undefined when there is too little to judge. */
function trend(figure: TrendName, label: string, series: [number, number][], basis: Trend['basis'], s: LeakSettings, minSpan: number): Trend | undefined {
  if (series.length < 2) return undefined;
  const spanMs = spanOf(series);
  const xs = series.map(([t]) => t / 60_000);
  const ys = series.map(([, v]) => v);
  const slope = theilSen(xs, ys);
  const half = series[0]![0] + spanMs / 2;
  const recent = series.filter(([t]) => t >= half);
  const early = series.filter(([t]) => t <= half);
  const recentSlope = recent.length >= 2 ? theilSen(recent.map(([t]) => t / 60_000), recent.map(([, v]) => v)) : 0;
  const earlySlope = early.length >= 2 ? theilSen(early.map(([t]) => t / 60_000), early.map(([, v]) => v)) : 0;
  const r2 = rSquared(xs, ys);
  const growth = slope * (spanMs / 60_000);
  // A leak keeps its pace; a warm-up slows down: the recent half must keep at least half the early pace.
  const sustained = recentSlope >= s.minSlope && recentSlope >= 0.5 * earlySlope;
  const growing = series.length >= 4 && spanMs >= minSpan && slope >= s.minSlope && growth >= s.minGrowth && r2 >= s.minR2 && sustained;
  return { figure, label, slopePerMin: slope, recentSlopePerMin: recentSlope, growth, spanMs, samples: series.length, basis, r2, growing };
}

/** One point per major GC the child saw (its GC count changed), at the time of that GC. */
function afterGc(points: readonly MemoryPoint[], key: keyof MemoryPoint): [number, number][] {
  const out: [number, number][] = [];
  let lastCount: number | undefined;
  for (const p of points) {
    const v = p[key];
    const count = p.gcMajorCount;
    if (!known(count) || !known(v as number | undefined) || count === lastCount) continue;
    if (lastCount !== undefined || out.length === 0) out.push([known(p.gcAt) && p.gcAt! <= p.t ? p.gcAt! : p.t, v as number]);
    lastCount = count;
  }
  return thin(out, 60);
}

/** The lower envelope: the lowest value in each `bucketMs` slice of time, at its own time. */
export function minima(series: [number, number | undefined][], bucketMs: number): [number, number][] {
  const out: [number, number][] = [];
  const first = series.find(([, v]) => known(v))?.[0];
  if (first === undefined) return out;
  let current: [number, number] | undefined;
  let index = -1;
  for (const [t, v] of series) {
    if (!known(v)) continue;
    const i = Math.floor((t - first) / bucketMs);
    if (i !== index) {
      if (current) out.push(current);
      current = [t, v];
      index = i;
    } else if (v < current![1]) current = [t, v];
  }
  if (current) out.push(current);
  return thin(out, 120);
}

/** At most `max` points, evenly picked (Theil–Sen is quadratic in the count). */
function thin(series: [number, number][], max: number): [number, number][] {
  if (series.length <= max) return series;
  const step = series.length / max;
  return Array.from({ length: max }, (_, i) => series[Math.floor(i * step)]!);
}

function spanOf(series: readonly [number, number][]): number {
  return series.length < 2 ? 0 : series.at(-1)![0] - series[0]![0];
}

function medianStep(points: readonly MemoryPoint[]): number {
  const steps = points.slice(1).map((p, i) => p.t - points[i]!.t).sort((a, b) => a - b);
  return steps.length === 0 ? 0 : steps[Math.floor(steps.length / 2)]!;
}

/** The Theil–Sen estimator: the median of the slopes between every pair of points. */
export function theilSen(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const slopes = new Float64Array((n * (n - 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = xs[j]! - xs[i]!;
      if (dx !== 0) slopes[k++] = (ys[j]! - ys[i]!) / dx;
    }
  }
  if (k === 0) return 0;
  // A typed array sorts numerically without a comparator, several times faster.
  const sorted = slopes.subarray(0, k).sort();
  const mid = k >> 1;
  return k % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function rSquared(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? 0 : (sxy * sxy) / (sxx * syy);
}

/** Flat load: the trend of open connections across the window stays within `tolerance` of their mean, or 2. */
function isLoadFlat(points: readonly MemoryPoint[], tolerance: number): boolean {
  const load = points.filter((p) => known(p.connections));
  if (load.length < 2) return true;
  const xs = load.map((p) => p.t / 60_000);
  const ys = load.map((p) => p.connections!);
  const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
  const trendAcross = Math.abs(theilSen(xs, ys)) * (xs.at(-1)! - xs[0]!);
  return trendAcross <= Math.max(2, tolerance * mean);
}

function describe(live: Trend[], committed: Trend[], growing: boolean, loadFlat: boolean): string {
  const rate = (t: Trend): string => `${t.slopePerMin >= 0 ? '+' : ''}${(t.slopePerMin / MiB).toFixed(1)} MiB/min`;
  const span = (t: Trend): string => (t.spanMs < 90_000 ? `over ${Math.round(t.spanMs / 1000)} s` : `over ${Math.round(t.spanMs / 60_000)} min`);
  // What grows first: the finding leads with it.
  const parts = [...live].sort((a, b) => Number(b.growing) - Number(a.growing)).map((t) => (t.growing ? `${t.label} ${rate(t)} ${span(t)}` : `${t.label} ${Math.abs(t.slopePerMin) < 0.5 * MiB ? 'flat' : rate(t)}`));
  const held = committed.filter((t) => t.growing).map((t) => `${t.label} ${rate(t)} (held, not a leak)`);
  const lead = growing ? 'growing: ' : loadFlat ? '' : 'load not flat: ';
  return lead + [...parts, ...held].join('; ');
}
