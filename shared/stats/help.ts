/**
 * HELP text of the families Baton itself writes (the supervisor, the memory reporter, the proxy),
 * by Prometheus family name. The README's metrics table is printed from this list
 * (scripts/metrics-table.ts), so a family added here is documented there. Families nobody
 * described get a generated line naming the dotted stat, so every family has HELP.
 */
import { CHILD_FIGURES, gaugeName } from '../memory-figures.ts';
import type { StatKind } from './layout.ts';
import { promName } from './prom-names.ts';

/** One documented family. */
export interface FamilyDoc {
  family: string;
  type: StatKind;
  /** Label names a series of the family carries. */
  labels: readonly string[];
  help: string;
}

/** Name of the family the exposition derives from the generation table (not a segment stat). */
export const GENERATION_START_FAMILY = 'baton_generation_start_time_seconds';

const MEMORY_HELP: Record<(typeof CHILD_FIGURES)[number], string> = {
  rss: 'Resident set size of the generation (process.memoryUsage().rss).',
  heapTotal: 'V8 heap size reserved by the generation (heapTotal).',
  heapUsed: 'V8 heap bytes in use by the generation (heapUsed).',
  external: 'Memory of C++ objects bound to JavaScript objects (external).',
  arrayBuffers: 'Memory of ArrayBuffers and SharedArrayBuffers (arrayBuffers).',
  v8Committed: 'Bytes committed for every V8 heap space.',
  v8Used: 'Bytes of live objects in the V8 heap spaces.',
  mallocArena: 'glibc main-arena bytes obtained from the kernel (-1 when unknown).',
  mallocInUse: 'glibc malloc bytes in use (-1 when unknown).',
  mallocFree: 'glibc malloc bytes free but held (-1 when unknown).',
  mallocFreeChunks: 'glibc malloc free chunks (-1 when unknown).',
  mallocMmapped: 'glibc malloc bytes in mmapped chunks (-1 when unknown).',
  mallocLargestFree: 'Upper bound of the largest non-empty malloc free bin (-1 when unknown).',
  mallocFreeResident: 'Free malloc bytes whose pages are resident (-1 when unknown).',
  mallocReturned: 'Free malloc bytes whose pages are not resident (-1 when unknown).',
  gcMajorCount: 'Major garbage collections seen so far.',
  gcAt: 'When the last major garbage collection ended (Unix time).',
  gcHeapUsed: 'V8 heap bytes used right after the last major garbage collection.',
  gcExternal: 'External bytes right after the last major garbage collection.',
  gcMallocInUse: 'malloc bytes in use right after the last major garbage collection (-1 when unknown).',
  jemallocAllocated: 'jemalloc bytes allocated by the app (-1 without jemalloc).',
  jemallocActive: 'jemalloc bytes in active pages (-1 without jemalloc).',
  jemallocResident: 'jemalloc resident bytes (-1 without jemalloc).',
  jemallocRetained: 'jemalloc bytes retained from the kernel (-1 without jemalloc).',
  sampledAt: 'When the generation last sampled its memory (Unix time).',
  generation: 'Generation number that wrote these memory figures.',
};

const L = ['listener'];
const LC = ['listener', 'code_class'];
const C = ['cluster_name'];
const CC = ['cluster_name', 'code_class'];

/** [kind, dotted name, labels the family carries, help]: dotted names with `<listener>`/`<cluster>` placeholders. */
const DOTTED: readonly [StatKind, string, readonly string[], string][] = [
  ['counter', 'baton.generations_started', [], 'Generations the supervisor started.'],
  ['counter', 'baton.reloads_ok', [], 'Reloads whose new generation became ready and was promoted.'],
  ['counter', 'baton.reloads_failed', [], 'Reloads whose new generation failed to become ready (the old one kept serving).'],
  ['counter', 'baton.crashes', [], 'Generations that exited without being asked to.'],
  ['counter', 'baton.drain_kills', [], 'Draining generations killed at the drain timeout.'],
  ['gauge', 'baton.generations_live', [], 'Generations running (serving, starting or draining).'],
  ['gauge', 'baton.generations_draining', [], 'Generations draining.'],
  ['counter', 'baton.stats.overflow', [], 'Stat registrations that did not fit the segment (not recorded).'],
  ...CHILD_FIGURES.map((f) => ['gauge', gaugeName(f), ['generation', 'worker'], MEMORY_HELP[f]] as [StatKind, string, string[], string]),
  ['counter', 'listener.<l>.downstream_cx_total', L, 'Connections the proxy accepted on the listener.'],
  ['gauge', 'listener.<l>.downstream_cx_active', L, 'Connections open on the listener.'],
  ['counter', 'listener.<l>.downstream_cx_fallback', L, 'Connections the lean HTTP/1.1 path handed to node:http (a body, Expect, Upgrade, HTTP/1.0, malformed input).'],
  ['counter', 'http.<l>.downstream_rq_total', L, 'HTTP requests the listener received.'],
  ['gauge', 'http.<l>.downstream_rq_active', L, 'HTTP requests in progress on the listener.'],
  ['counter', 'http.<l>.downstream_rq_2xx', LC, 'HTTP responses the listener sent, by status class.'],
  ['histogram', 'http.<l>.downstream_rq_time', L, 'Time from a request arriving to its response closing (finished or cut).'],
  ['counter', 'http.<l>.downstream_rq_rejected', L, 'Requests refused as malformed (400) or with oversized headers (431).'],
  ['counter', 'http.<l>.no_route', L, 'Requests that matched no route.'],
  ['counter', 'cluster.<c>.upstream_rq_total', C, 'Requests sent to the cluster.'],
  ['gauge', 'cluster.<c>.upstream_rq_active', C, 'Requests to the cluster in progress.'],
  ['gauge', 'cluster.<c>.upstream_rq_pending_active', C, 'Requests waiting for an upstream connection.'],
  ['counter', 'cluster.<c>.upstream_rq_pending_overflow', C, 'Requests refused because the pending queue was full.'],
  ['counter', 'cluster.<c>.upstream_rq_timeout', C, 'Upstream requests that timed out.'],
  ['counter', 'cluster.<c>.upstream_rq_retry', C, 'Upstream requests retried.'],
  ['counter', 'cluster.<c>.upstream_rq_2xx', CC, 'Upstream responses, by status class.'],
  ['histogram', 'cluster.<c>.upstream_rq_time', C, 'Time from sending an upstream request to its response headers.'],
  ['counter', 'cluster.<c>.upstream_cx_total', C, 'Upstream connections opened.'],
  ['gauge', 'cluster.<c>.upstream_cx_active', C, 'Upstream connections open.'],
  ['counter', 'cluster.<c>.upstream_cx_connect_fail', C, 'Upstream connection attempts that failed.'],
  ['counter', 'cluster.<c>.upstream_cx_none_healthy', C, 'Requests that found no healthy upstream endpoint.'],
  ['counter', 'cluster.<c>.health_check.attempt', C, 'Active health checks run.'],
  ['counter', 'cluster.<c>.health_check.failure', C, 'Active health checks that failed.'],
  ['gauge', 'cluster.<c>.health_check.healthy', C, 'Endpoints of the cluster passing health checks.'],
];

/** Every family Baton documents, in README order. */
export const BATON_FAMILIES: readonly FamilyDoc[] = Object.freeze([
  ...DOTTED.map(([type, dotted, labels, help]) => ({ family: promName(type, dotted).family, type, labels, help })),
  { family: GENERATION_START_FAMILY, type: 'gauge' as const, labels: ['generation', 'worker'], help: 'Start time of each generation (each of its workers) the supervisor is running (Unix time).' },
]);

const byFamily = new Map(BATON_FAMILIES.map((d) => [d.family, d.help]));

/** HELP text of a family: Baton's own, else what a registration stored with it (`stored`), else one naming the dotted stat it came from. */
export function helpOf(family: string, kind: StatKind, dotted: string, stored?: string): string {
  return byFamily.get(family) ?? stored ?? `${kind[0]!.toUpperCase()}${kind.slice(1)} ${dotted} (no help text registered).`;
}
