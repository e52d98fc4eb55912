/**
 * The stats modules (shared/stats: a dozen modules and the native addon, about 20 ms of CPU)
 * loaded the first time something counts, not when the SDK is imported: a generation records
 * nothing before it is ready, so its start does not wait for them, and one that never records
 * anything never loads them. Synchronously (require of an ES module, Node >= 22.12), since the
 * stats API is synchronous; it is the very module instance an import elsewhere gets. Each part
 * on its own: counting needs the segment, not the Prometheus text.
 */
type Segments = typeof import('../shared/stats/stats.ts');
type Exposition = typeof import('../shared/stats/exposition.ts');
type PromNames = typeof import('../shared/stats/prom-names.ts');

const load = process.getBuiltinModule('node:module').createRequire(import.meta.url);
// This module's own extension: .ts from the sources of a checkout, .js from the compiled dist/.
const EXTENSION = import.meta.url.slice(import.meta.url.lastIndexOf('.'));
const cache = new Map<string, unknown>();

function lazy<M>(name: string): M {
  let m = cache.get(name);
  if (m === undefined) {
    m = load(`../shared/stats/${name}${EXTENSION}`);
    cache.set(name, m);
  }
  return m as M;
}

/** openSegment, createSegment: the shared segment itself. */
export const segments = (): Segments => lazy<Segments>('stats');
/** toPrometheus: the text exposition. */
export const exposition = (): Exposition => lazy<Exposition>('exposition');
/** promName: how a stat's name maps to a Prometheus family (checked at registration). */
export const promNames = (): PromNames => lazy<PromNames>('prom-names');
