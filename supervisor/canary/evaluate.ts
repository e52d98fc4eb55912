import { quantile, type Figures } from './figures.ts';

/** The canary's thresholds, as validated from the config's `canary:` block. */
export interface CanaryConfig {
  /** How long the new generation is watched before the old one drains. */
  window: number;
  /** Rolled back when the share of 5xx answers exceeds this (and the old generation's own share). */
  maxErrorRate: number;
  /** Rolled back when p99 latency exceeds this many times the old generation's p99… */
  maxP99Ratio: number;
  /** …and exceeds it by more than this many milliseconds (a 1 ms p99 tripling is noise). Judged at the window's end. */
  p99Floor: number;
  /** Nothing is judged on fewer answered requests than this. */
  minRequests: number;
}

export type Verdict =
  | { kind: 'wait'; why: string }
  | { kind: 'breach'; reason: string }
  | { kind: 'pass'; reason: string };

/**
 * Judges the new generation's figures in its window (`current`) against the old generation's
 * from before the reload (`baseline`) and the thresholds. `final` is the end of the window:
 * what has not breached by then passes, whatever the number of requests.
 */
export function evaluate(current: Figures, baseline: Figures, c: CanaryConfig, final: boolean): Verdict {
  const n = current.requests;
  if (n >= c.minRequests) {
    const rate = current.errors / n;
    const baseRate = baseline.requests >= c.minRequests ? baseline.errors / baseline.requests : 0;
    if (rate > Math.max(c.maxErrorRate, baseRate)) {
      const limit = baseRate > c.maxErrorRate ? `${percent(baseRate)} (the previous generation's)` : percent(c.maxErrorRate);
      return { kind: 'breach', reason: `5xx ${percent(rate)} > ${limit} over ${n} requests` };
    }
    // p99 only over the whole window: a generation's first requests run cold (JIT, caches), and
    // an early p99 would roll back every release for its first second.
    if (final && baseline.requests >= c.minRequests) {
      const p99 = quantile(current, 0.99);
      const base = quantile(baseline, 0.99);
      if (p99 > base * c.maxP99Ratio && p99 - base > c.p99Floor) {
        return { kind: 'breach', reason: `p99 ${ms(p99)} > ${c.maxP99Ratio} × ${ms(base)} over ${n} requests` };
      }
    }
  }
  if (!final) return { kind: 'wait', why: n < c.minRequests ? `${n} of ${c.minRequests} requests` : 'window open' };
  if (n < c.minRequests) return { kind: 'pass', reason: `only ${n} requests in the window (fewer than ${c.minRequests} to judge): no breach` };
  return { kind: 'pass', reason: `5xx ${percent(current.errors / n)}, p99 ${ms(quantile(current, 0.99))} over ${n} requests` };
}

function percent(x: number): string {
  const p = x * 100;
  return `${p >= 10 || Number.isInteger(p) ? p.toFixed(p >= 10 && !Number.isInteger(p) ? 1 : 0) : p.toFixed(1)}%`;
}

function ms(x: number): string {
  return Number.isNaN(x) ? 'n/a' : `${x >= 10 ? Math.round(x) : x.toFixed(1)}ms`;
}
