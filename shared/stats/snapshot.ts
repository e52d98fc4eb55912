/**
 * Reading: every stat summed over its writer slots and the retired slot, under the seqlock so a
 * writer being retired is counted exactly once. Needs no writer slot and takes no lock.
 */
import { H } from './layout.ts';
import type { Catalog, Descriptor, Labels } from './table.ts';

/** A counter or gauge reading. */
export interface ScalarSample {
  name: string;
  labels: Labels;
  kind: 'counter' | 'gauge';
  value: number;
  /** Help text a registration stored with the stat (cleaned: one line, at most 511 bytes); absent when none did. */
  help?: string;
}

/** A histogram reading; `buckets[i]` counts values in (bounds[i-1], bounds[i]], the last one those above every bound (+Inf). Not cumulative. */
export interface HistogramSample {
  name: string;
  labels: Labels;
  kind: 'histogram';
  bounds: readonly number[];
  buckets: number[];
  sum: number;
  count: number;
  /** As ScalarSample's. */
  help?: string;
}

/** One stat as read by a snapshot. */
export type StatSample = ScalarSample | HistogramSample;

function read(catalog: Catalog, d: Descriptor): StatSample {
  const { layout, segments } = catalog.set;
  const values = segments[d.segment]!.values;
  const stride = layout.regionCells;
  const end = (layout.writers + 1) * stride;
  const total = (cell: number): number => {
    let sum = 0;
    for (let i = cell; i < end; i += stride) sum += values[i]!;
    return sum;
  };
  const help = catalog.helpOf(d);
  const extra = help === undefined ? undefined : { help };
  if (d.kind !== 'histogram') return { name: d.name, labels: d.labels, kind: d.kind, value: total(d.cell), ...extra };
  const n = d.bounds.length;
  const buckets = new Array<number>(n + 1);
  for (let i = 0; i <= n; i++) buckets[i] = total(d.cell + i);
  return { name: d.name, labels: d.labels, kind: 'histogram', bounds: d.bounds, buckets, sum: total(d.cell + n + 1), count: total(d.cell + n + 2), ...extra };
}

/** How often a read restarts because entries were retired or reused under it before it reads anyway: bounded, since any process can bump the epoch (a retirement comes once a reload, a read takes microseconds). */
const EPOCH_RETRIES = 10;

/**
 * Runs `read` over fresh descriptors under the seqlock, again if entries were retired or reused
 * meanwhile: a descriptor decoded before a retirement would read the zeroed cells, or those of
 * the stat that reused them, under its old name.
 */
function stable<T>(catalog: Catalog, read: () => T): T {
  for (let attempt = 0; ; attempt++) {
    catalog.sync();
    const epoch = catalog.epoch;
    const result = catalog.set.consistent(read);
    if (Atomics.load(catalog.set.header, H.tableEpoch) === epoch || attempt >= EPOCH_RETRIES) return result;
  }
}

/** Every published stat whose name matches `filter` (all when omitted), in registration order, summed over writers. */
export function readSnapshot(catalog: Catalog, filter?: RegExp): StatSample[] {
  return stable(catalog, () => {
    const selected = filter
      ? catalog.all().filter((d) => {
          filter.lastIndex = 0; // a /g or /y filter must not remember the previous name
          return filter.test(d.name);
        })
      : catalog.all();
    return selected.map((d) => read(catalog, d));
  });
}

/** One published stat (catalog key), or undefined if none is published under it. */
export function readSample(catalog: Catalog, key: string): StatSample | undefined {
  return stable(catalog, () => {
    const d = catalog.get(key);
    return d && read(catalog, d);
  });
}
