/** Shared-memory stats (counters, gauges, histograms) that survive hot restarts. Re-exports only. */
export {
  DEFAULT_CAPACITIES,
  GENERATION_STATES,
  LAYOUT_VERSION,
  STATS_ERR,
  computeLayout,
  hotRestartVersion,
  type GenerationState,
  type Layout,
  type StatKind,
  type StatsCapacities,
} from './layout.ts';
export { DEFAULT_DIR, segmentPath } from './files.ts';
export { isAlive } from './locks.ts';
export { OWNER_LOCK_WAIT_MS } from './segment-lock.ts';
export type { ShrunkSegment, StatsLimits, StatsLogger } from './segment.ts';
export type { GenerationEntry, GenerationUpdate } from './generations.ts';
export { OVERFLOW_STAT, type Counter, type Gauge, type Histogram } from './registry.ts';
export type { HistogramSample, ScalarSample, StatSample } from './snapshot.ts';
export type { Labels, TableUsage } from './table.ts';
export { PROMETHEUS_CONTENT_TYPE, escapeLabelValue, formatValue, toJSON, toPrometheus, type PrometheusOptions } from './exposition.ts';
export { PROM_NAME, promName, type PromName } from './prom-names.ts';
export { BATON_FAMILIES, GENERATION_START_FAMILY, helpOf, type FamilyDoc } from './help.ts';
export { Stats, openSegment, type CreateSegmentOptions, type OpenSegmentOptions, type SegmentOptions } from './stats.ts';
export { OwnerStats, adoptSegment, createSegment } from './owner-stats.ts';
