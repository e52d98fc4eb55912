/**
 * How a dotted stat name (what `baton stats`, the proxy's /stats and the segment show) becomes a
 * Prometheus family and labels. Explicit rules, applied in order, like Envoy's tag extraction:
 *
 * 1. Instance data leaves the name: `cluster.<name>.…` → label `cluster_name`, `http.<name>.…`
 *    and `listener.<name>.…` → label `listener` (the proxy's Envoy-style namespaces).
 * 2. A status class leaves the name: `…_2xx` → `…_xx` with label `code_class="2xx"`.
 * 3. Base units: `…_ms` → `…_seconds`, and the Envoy namespaces' `…_time` histograms (ms, as in
 *    Envoy) → `…_time_seconds`, values divided by 1000; `baton.memory.*` gauges are bytes →
 *    `…_bytes` (except the counts and stamps listed in MEMORY_NOT_BYTES).
 * 4. The Envoy namespaces and Baton's own stats are prefixed `baton_`; an app's other names keep theirs.
 * 5. Counters end in `_total` (appended when missing); a non-counter whose name ends in `_total`
 *    with no unit after it ends in `_all` instead (Prometheus keeps `_total` for counters), and
 *    one ending in `_count`, `_sum` or `_bucket` gets `_value` (those are a histogram's).
 * 6. Every other character a Prometheus name cannot hold (the dots) becomes `_`.
 *
 * Labels the stat was registered with are kept; a `writer` label (a slot index, which
 * generations reuse) is replaced at exposition by `generation` from the segment's table.
 */
import type { StatKind } from './layout.ts';
import type { Labels } from './table.ts';

/** A dotted stat as Prometheus sees it. */
export interface PromName {
  /** Family name (without _bucket/_sum/_count). */
  family: string;
  /** Labels added by the rules (before the stat's own). */
  extracted: Labels;
  /** Values and histogram bounds are divided by this (1000 for ms → seconds). */
  divisor: number;
}

/** Namespaces whose second segment is an instance name, and the label it becomes. */
export const TAG_NAMESPACES: Readonly<Record<string, string>> = Object.freeze({ cluster: 'cluster_name', http: 'listener', listener: 'listener' });
/** `baton.memory.*` figures that are not byte counts: name suffix to use instead (and divisor). */
export const MEMORY_NOT_BYTES: Readonly<Record<string, { suffix: string; divisor: number }>> = Object.freeze({
  malloc_free_chunks: { suffix: '', divisor: 1 },
  generation: { suffix: '', divisor: 1 },
  sampled_at: { suffix: '_timestamp_seconds', divisor: 1000 },
  gc_major_count: { suffix: '', divisor: 1 },
  gc_at: { suffix: '_timestamp_seconds', divisor: 1000 },
});

const STATUS_CLASS = /^(.*)_([1-5])xx$/;
/** A valid Prometheus metric name. */
export const PROM_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** The Prometheus family and extracted labels of dotted stat `name` of `kind` (pure; cache the result). */
export function promName(kind: StatKind, name: string): PromName {
  const extracted: Record<string, string> = {};
  let parts = name.split('.');
  let divisor = 1;
  let prefix = '';
  const label = TAG_NAMESPACES[parts[0]!];
  const envoy = label !== undefined && parts.length >= 3;
  if (envoy) {
    extracted[label] = parts[1]!;
    parts = [parts[0]!, ...parts.slice(2)];
    prefix = 'baton_';
  }
  let last = parts[parts.length - 1]!;
  const status = STATUS_CLASS.exec(last);
  if (status && kind === 'counter') {
    extracted.code_class = `${status[2]}xx`;
    last = `${status[1]}_xx`;
  }
  if (last.endsWith('_ms')) {
    last = `${last.slice(0, -3)}_seconds`;
    divisor = 1000;
  } else if (envoy && kind === 'histogram' && last.endsWith('_time')) {
    last = `${last}_seconds`;
    divisor = 1000;
  } else if (parts[0] === 'baton' && parts[1] === 'memory' && parts.length === 3 && kind === 'gauge') {
    const other = MEMORY_NOT_BYTES[last];
    if (other) {
      last += other.suffix;
      divisor = other.divisor;
    } else if (!last.endsWith('_bytes')) last += '_bytes';
  }
  parts[parts.length - 1] = last;
  let family = prefix + parts.join('_').replace(/[^a-zA-Z0-9_:]/g, '_');
  if (kind === 'counter') {
    if (!family.endsWith('_total')) family += '_total';
  } else if (family.endsWith('_total')) {
    family = `${family.slice(0, -6)}_all`;
  } else if (/_(count|sum|bucket)$/.test(family)) {
    // Reserved for a histogram's series: a gauge named so would read as part of one.
    family += '_value';
  }
  if (!/^[a-zA-Z_:]/.test(family)) family = `_${family}`;
  return { family, extracted: Object.freeze(extracted), divisor };
}

