/**
 * A bounded time series of one generation's memory: a ring of samples (history), summaries over
 * the most recent `window` (now / min / max / slope), kept for a while after the generation exits
 * so releases can be compared side by side.
 */
import type { ChildMemory, RuntimeHealth } from '../../shared/memory-figures.ts';
import type { ProcMemory } from './proc.ts';

/** One sample: supervisor-side figures always (when the process exists), the child's when it reports. */
export interface MemoryPoint extends Partial<ProcMemory>, Partial<Omit<ChildMemory, 'sampledAt'>>, Partial<Omit<RuntimeHealth, 'sampledAt' | 'generation'>> {
  /** Epoch ms. */
  t: number;
  /** Open connections the generation reported (its load), when it reports them. */
  connections?: number;
}

export type Figure = Exclude<keyof MemoryPoint, 't'>;

export interface FigureSummary {
  now: number;
  min: number;
  max: number;
  /** Least-squares slope over the window, bytes per minute. */
  slopePerMin: number;
  /** Coefficient of determination of that fit (1: perfectly steady growth). */
  r2: number;
}

export class MemorySeries {
  readonly generation: number;
  readonly pid: number;
  private readonly capacity: number;
  private readonly ring: MemoryPoint[] = [];
  private start = 0;
  exitedAt: number | undefined;
  /** Events to mark on plots: reload, crash, soft/hard limit, exit. */
  readonly events: { t: number; kind: string; detail?: string }[] = [];

  constructor(generation: number, pid: number, capacity: number) {
    this.generation = generation;
    this.pid = pid;
    this.capacity = Math.max(2, capacity);
  }

  push(point: MemoryPoint): void {
    if (this.ring.length < this.capacity) this.ring.push(point);
    else {
      this.ring[this.start] = point;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  mark(t: number, kind: string, detail?: string): void {
    this.events.push({ t, kind, ...(detail !== undefined ? { detail } : {}) });
    if (this.events.length > 100) this.events.shift();
  }

  /** Every point, oldest first. */
  points(): MemoryPoint[] {
    return [...this.ring.slice(this.start), ...this.ring.slice(0, this.start)];
  }

  last(): MemoryPoint | undefined {
    return this.ring.length === 0 ? undefined : this.ring[(this.start + this.ring.length - 1) % this.ring.length];
  }

  /** Points within `windowMs` of the newest. */
  window(windowMs: number): MemoryPoint[] {
    const all = this.points();
    const newest = all.at(-1)?.t ?? 0;
    return all.filter((p) => p.t >= newest - windowMs);
  }

  /** now/min/max/slope of `figure` over the window; undefined when no point has it. */
  summary(figure: Figure, windowMs: number): FigureSummary | undefined {
    return summarize(this.window(windowMs), figure);
  }
}

export function summarize(points: MemoryPoint[], figure: Figure): FigureSummary | undefined {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const p of points) {
    const v = p[figure];
    if (typeof v === 'number' && v >= 0) {
      xs.push(p.t / 60_000);
      ys.push(v);
    }
  }
  if (ys.length === 0) return undefined;
  const fit = leastSquares(xs, ys);
  return { now: ys.at(-1)!, min: Math.min(...ys), max: Math.max(...ys), slopePerMin: fit.slope, r2: fit.r2 };
}

/** Slope (y per x unit) and r² of the least-squares line through the points. */
export function leastSquares(xs: number[], ys: number[]): { slope: number; r2: number } {
  const n = xs.length;
  if (n < 2) return { slope: 0, r2: 0 };
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0) return { slope: 0, r2: 0 };
  const slope = sxy / sxx;
  return { slope, r2: syy === 0 ? 0 : (sxy * sxy) / (sxx * syy) };
}
