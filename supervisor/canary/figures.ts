import type { HistogramSample, StatSample } from '../../shared/stats/index.ts';

/** Must match child/stats/request-stats.ts (supervisor/ and child/ never import each other). */
export const REQUESTS_STAT = 'baton.http.requests';
export const LATENCY_STAT = 'baton.http.request_ms';
/** Selects both stats out of a snapshot. */
export const REQUEST_STATS_FILTER = /^baton\.http\.(requests|request_ms)$/;

/** One generation's request figures: answered requests, of which 5xx, and the latency histogram. */
export interface Figures {
  requests: number;
  errors: number;
  /** Latency buckets (not cumulative; the last is +Inf) over `bounds`, summed over workers. */
  bounds: readonly number[];
  buckets: number[];
}

export const NO_FIGURES: Figures = { requests: 0, errors: 0, bounds: [], buckets: [] };

/** Generation `generation`'s figures out of a snapshot (every worker's summed). */
export function figuresOf(samples: readonly StatSample[], generation: number): Figures {
  const label = String(generation);
  let requests = 0;
  let errors = 0;
  let bounds: readonly number[] = [];
  let buckets: number[] = [];
  for (const s of samples) {
    if (s.labels.generation !== label) continue;
    if (s.name === REQUESTS_STAT && s.kind === 'counter') {
      requests += s.value;
      if (s.labels.code_class === '5xx') errors += s.value;
    } else if (s.name === LATENCY_STAT && s.kind === 'histogram') {
      const h = s as HistogramSample;
      if (buckets.length === 0) {
        bounds = h.bounds;
        buckets = [...h.buckets];
      } else if (sameBounds(bounds, h.bounds)) {
        h.buckets.forEach((n, i) => (buckets[i] = (buckets[i] ?? 0) + n));
      }
    }
  }
  return { requests, errors, bounds, buckets };
}

/** `after` minus `before`: what happened in between (counters never go down). */
export function since(before: Figures, after: Figures): Figures {
  if (before.requests === 0) return after;
  const buckets = sameBounds(before.bounds, after.bounds) ? after.buckets.map((n, i) => n - (before.buckets[i] ?? 0)) : after.buckets;
  return { requests: after.requests - before.requests, errors: after.errors - before.errors, bounds: after.bounds, buckets };
}

/**
 * The `q` quantile (0…1) of a bucketed histogram, interpolated linearly inside its bucket;
 * a quantile in the +Inf bucket is reported as the last bound. NaN when empty.
 */
export function quantile(f: Pick<Figures, 'bounds' | 'buckets'>, q: number): number {
  const total = f.buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < f.buckets.length; i++) {
    const n = f.buckets[i]!;
    if (n > 0 && seen + n >= rank) {
      if (i >= f.bounds.length) return f.bounds[f.bounds.length - 1] ?? NaN;
      const lower = i === 0 ? 0 : f.bounds[i - 1]!;
      return lower + (f.bounds[i]! - lower) * ((rank - seen) / n);
    }
    seen += n;
  }
  return f.bounds[f.bounds.length - 1] ?? NaN;
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
