/**
 * Where the proxy's stats live. Under Baton: written through the SDK into the shared segment (so
 * they continue across generations) and read back through a read-only mapping of that segment.
 * Without Baton: a private segment of this process, for both.
 */
import { stats as sdkStats } from '../child/index.ts';
import { ENV } from '../shared/launch-env.ts';
import { createSegment, openSegment, type Counter, type Gauge, type Histogram, type StatSample, type Stats } from '../shared/stats/index.ts';

export interface StatsStore {
  counter(name: string): Counter;
  gauge(name: string): Gauge;
  histogram(name: string, bounds: readonly number[]): Histogram;
  snapshot(filter?: RegExp): StatSample[];
  /** Hot-restart compatibility string of the segment. */
  version(): string;
}

/** Bucket bounds (ms) of the proxy's duration histograms. */
export const TIME_BOUNDS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];

export function openStatsStore(env: NodeJS.ProcessEnv = process.env): StatsStore {
  const dir = env[ENV.statsDir];
  const instance = env[ENV.instance];
  if (dir !== undefined && instance !== undefined && env[ENV.protocol] !== undefined) {
    let reader: Stats | undefined;
    const read = (): Stats => (reader ??= openSegment({ instance, dir }));
    return {
      counter: (n) => sdkStats.counter(n),
      gauge: (n) => sdkStats.gauge(n),
      histogram: (n, b) => sdkStats.histogram(n, b),
      snapshot: (filter) => read().snapshot(filter),
      version: () => read().version,
    };
  }
  const own = createSegment({ instance: `proxy-${process.pid}` });
  own.destroy();
  return {
    counter: (n) => own.counter(n),
    gauge: (n) => own.gauge(n),
    histogram: (n, b) => own.histogram(n, b),
    snapshot: (filter) => own.snapshot(filter),
    version: () => own.version,
  };
}
