/**
 * Snapshots as JSON and as Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
 */
import type { GenerationEntry } from './generations.ts';
import { GENERATION_START_FAMILY, helpOf } from './help.ts';
import type { StatKind } from './layout.ts';
import { promName, type PromName } from './prom-names.ts';
import type { StatSample } from './snapshot.ts';

/** Content-Type of toPrometheus's output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A number as the exposition format writes it: +Inf, -Inf, NaN or a JavaScript (Go-parsable) float. */
export function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

/** A label value escaped for the exposition format: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`)) : value;
}

const NEEDS_ESCAPE = /[\\"\n]/;

/** Options of toPrometheus. */
export interface PrometheusOptions {
  /**
   * The segment's generation table: a `writer` label (a slot index) becomes `generation` and `worker`, a
   * series of a writer no live generation holds is left out, and each generation's start time
   * is exposed as baton_generation_start_time_seconds. Without it `writer` labels stay.
   */
  generations?: readonly GenerationEntry[];
  /** HELP text the caller knows for a family (an app's registrations); else Baton's own, the text a registration stored with the stat in the segment, or a generated line. */
  help?: (family: string) => string | undefined;
}

/** Prometheus name of each (kind, dotted name) seen (bounded by the names registered). */
const nameCache = new Map<string, PromName & { pairs: string }>();
/** `k="v",…` of a labels object; snapshots share frozen labels objects, so this is computed once per stat. */
const pairsCache = new WeakMap<object, string>();

function pairsOf(labels: Readonly<Record<string, string>>): string {
  let pairs = pairsCache.get(labels);
  if (pairs === undefined) {
    pairs = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
      .join(',');
    pairsCache.set(labels, pairs);
  }
  return pairs;
}

function mapped(kind: StatKind, name: string): PromName & { pairs: string } {
  const key = `${kind}\0${name}`;
  let m = nameCache.get(key);
  if (m === undefined) {
    const p = promName(kind, name);
    nameCache.set(key, (m = { ...p, pairs: pairsOf(p.extracted) }));
  }
  return m;
}

function join(a: string, b: string): string {
  return a === '' ? b : b === '' ? a : `${a},${b}`;
}

function braces(pairs: string, le?: string): string {
  if (le !== undefined) pairs = join(pairs, `le="${le}"`);
  return pairs === '' ? '' : `{${pairs}}`;
}

interface Family {
  kind: StatKind;
  dotted: string;
  divisor: number;
  /** Help stored with the first of its stats that has some. */
  help?: string;
  /** Label text → the sample (summed when two dotted stats map to the same series). */
  series: Map<string, StatSample>;
  /** Label text → (generation, worker) rank, for series that came from a writer slot. */
  rank?: Map<string, number>;
}

/**
 * A family's series in (generation, worker) order: slots are taken in whatever order the workers
 * registered, and a scrape should not reorder from one generation to the next.
 */
function ordered(f: Family): Iterable<[string, StatSample]> {
  const { rank } = f;
  if (rank === undefined || f.series.size < 2) return f.series;
  return [...f.series].sort(([a], [b]) => (rank.get(a) ?? -1) - (rank.get(b) ?? -1));
}

/** Two samples of one series summed, in a new object (the snapshot's samples are the caller's). */
function merged(a: StatSample, b: StatSample): StatSample {
  if (a.kind !== 'histogram') return { ...a, value: a.value + (b as { value: number }).value };
  if (b.kind !== 'histogram' || b.bounds.length !== a.bounds.length || !b.bounds.every((x, i) => x === a.bounds[i])) return a;
  return { ...a, buckets: a.buckets.map((c, i) => c + b.buckets[i]!), sum: a.sum + b.sum, count: a.count + b.count };
}

/** Extracted plus own label pairs of a sample, cached on its (frozen, per-stat) labels object. */
const fullCache = new WeakMap<object, { name: string; pairs: string }>();
function fullPairs(m: { pairs: string }, sample: StatSample): string {
  if (Object.keys(sample.labels).length === 0) return m.pairs;
  const hit = fullCache.get(sample.labels);
  if (hit !== undefined && hit.name === sample.name) return hit.pairs;
  const pairs = join(m.pairs, pairsOf(sample.labels));
  if (Object.isFrozen(sample.labels)) fullCache.set(sample.labels, { name: sample.name, pairs });
  return pairs;
}

function helpLine(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/**
 * Prometheus text exposition of a snapshot: dotted names mapped to families and labels by the
 * rules of prom-names.ts, `# HELP` and `# TYPE` for every family, values in base units,
 * cumulative histogram buckets ending in +Inf, then _sum and _count (= the +Inf bucket).
 */
export function toPrometheus(samples: readonly StatSample[], options: PrometheusOptions = {}): string {
  const { generations } = options;
  const genByWriter = generations && new Map(generations.filter((g) => g.writer >= 0).map((g) => [String(g.writer), g]));
  const families = new Map<string, Family>();
  for (const sample of samples) {
    const m = mapped(sample.kind, sample.name);
    let pairs: string;
    let rank: number | undefined;
    if (genByWriter && sample.labels.writer !== undefined) {
      const g = genByWriter.get(sample.labels.writer);
      if (g === undefined) continue;
      const { writer: _, ...rest } = sample.labels;
      pairs = join(m.pairs, pairsOf(Object.freeze({ ...rest, generation: String(g.number), worker: String(g.worker) })));
      rank = g.number * 65_536 + g.worker;
    } else pairs = fullPairs(m, sample);
    let family = families.get(m.family);
    if (family === undefined) families.set(m.family, (family = { kind: sample.kind, dotted: sample.name, divisor: m.divisor, series: new Map() }));
    // Another kind already owns this family name: Prometheus cannot hold both, the first one stays.
    if (family.kind !== sample.kind) continue;
    if (family.help === undefined && sample.help !== undefined) family.help = sample.help;
    const seen = family.series.get(pairs);
    if (seen === undefined) family.series.set(pairs, sample);
    else family.series.set(pairs, merged(seen, sample));
    if (rank !== undefined) (family.rank ??= new Map()).set(pairs, rank);
  }
  const lines: string[] = [];
  for (const [name, f] of families) {
    const help = options.help?.(name) ?? helpOf(name, f.kind, f.dotted, f.help);
    lines.push(`# HELP ${name} ${helpLine(help)}`, `# TYPE ${name} ${f.kind}`);
    const d = f.divisor;
    for (const [pairs, s] of ordered(f)) {
      if (s.kind !== 'histogram') {
        lines.push(`${name}${braces(pairs)} ${formatValue(s.value / d)}`);
        continue;
      }
      let cumulative = 0;
      s.bounds.forEach((bound, i) => {
        cumulative += s.buckets[i]!;
        lines.push(`${name}_bucket${braces(pairs, formatValue(bound / d))} ${formatValue(cumulative)}`);
      });
      // +Inf and _count from the buckets themselves: a reading taken between a writer's bucket and
      // count stores would otherwise expose a non-monotonic histogram.
      cumulative += s.buckets[s.bounds.length]!;
      lines.push(`${name}_bucket${braces(pairs, '+Inf')} ${formatValue(cumulative)}`);
      lines.push(`${name}_sum${braces(pairs)} ${formatValue(s.sum / d)}`);
      lines.push(`${name}_count${braces(pairs)} ${formatValue(cumulative)}`);
    }
  }
  if (generations && generations.length > 0) {
    lines.push(`# HELP ${GENERATION_START_FAMILY} ${helpOf(GENERATION_START_FAMILY, 'gauge', '')}`, `# TYPE ${GENERATION_START_FAMILY} gauge`);
    for (const g of [...generations].sort((a, b) => a.number - b.number || a.worker - b.worker)) {
      lines.push(`${GENERATION_START_FAMILY}{generation="${g.number}",worker="${g.worker}"} ${formatValue(g.startedAt / 1000)}`);
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function jsonNumber(v: number): number | string {
  return Number.isFinite(v) ? v : formatValue(v);
}

/** JSON text of a snapshot: `{ "stats": [...] }`, histogram buckets as `{ le, count }` (not cumulative, le "+Inf" last), non-finite numbers as "+Inf", "-Inf", "NaN". */
export function toJSON(samples: readonly StatSample[], space?: number): string {
  const stats = samples.map((s) =>
    s.kind === 'histogram'
      ? {
          name: s.name,
          labels: s.labels,
          kind: s.kind,
          buckets: s.buckets.map((count, i) => ({ le: i < s.bounds.length ? s.bounds[i]! : '+Inf', count })),
          sum: jsonNumber(s.sum),
          count: s.count,
        }
      : { name: s.name, labels: s.labels, kind: s.kind, value: jsonNumber(s.value) },
  );
  return JSON.stringify({ stats }, null, space);
}
