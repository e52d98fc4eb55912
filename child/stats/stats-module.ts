/**
 * The stats modules (shared/stats: a dozen modules and the native addon, about 20 ms of CPU)
 * loaded the first time something counts, not when the SDK is imported: a generation records
 * nothing before it is ready, so its start does not wait for them, and one that never records
 * anything never loads them. Each part on its own: counting needs the segment, not the
 * Prometheus text.
 */
import { lazyModule } from '../../shared/lazy-module.ts';

/** openSegment: the shared segment, as a generation maps it. */
export const segments = lazyModule<typeof import('../../shared/stats/stats.ts')>(import.meta.url, '../../shared/stats/stats');
/** createPrivateSegment: a segment of this process's own (no supervisor), with the owner's modules. */
export const privateSegments = lazyModule<typeof import('../../shared/stats/private-segment.ts')>(import.meta.url, '../../shared/stats/private-segment');
/** toPrometheus: the text exposition. */
export const exposition = lazyModule<typeof import('../../shared/stats/exposition.ts')>(import.meta.url, '../../shared/stats/exposition');
/** promName: how a stat's name maps to a Prometheus family (checked at registration). */
export const promNames = lazyModule<typeof import('../../shared/stats/prom-names.ts')>(import.meta.url, '../../shared/stats/prom-names');
