/**
 * Where the proxy's stats live: the SDK's. Under Baton, the shared segment (they continue across
 * generations, and a snapshot sums every generation); without Baton, a private segment.
 */
import { stats } from '../../child/index.ts';
import type { Counter, Gauge, GenerationEntry, Histogram, StatSample } from '../../shared/stats/index.ts';

export interface StatsStore {
  counter(name: string): Counter;
  gauge(name: string): Gauge;
  histogram(name: string, bounds: readonly number[]): Histogram;
  snapshot(filter?: RegExp): StatSample[];
  /** The segment's generation table (writer slot → generation), for /stats/prometheus's labels. */
  generations?(): GenerationEntry[];
  /** Hot-restart compatibility string of the segment. */
  version(): string;
}

/** Bucket bounds (ms, as Envoy's) of the proxy's duration histograms; Prometheus sees them in seconds (prom-names.ts). */
export const TIME_BOUNDS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];

export function openStatsStore(): StatsStore {
  return {
    counter: (n) => stats.counter(n),
    gauge: (n) => stats.gauge(n),
    histogram: (n, b) => stats.histogram(n, b),
    snapshot: (filter) => stats.snapshot(filter),
    generations: () => stats.generations(),
    version: () => stats.version(),
  };
}
