/**
 * Snapshots as JSON and as Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
 */
import { familyName } from './table.ts';
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
/** Prometheus family of each stat name seen (bounded by the names registered). */
const familyCache = new Map<string, string>();
/** `k="v",…` of a labels object; snapshots share frozen labels objects, so this is computed once per stat. */
const pairsCache = new WeakMap<object, string>();

function labelPairs(labels: Readonly<Record<string, string>>): string {
  let pairs = pairsCache.get(labels);
  if (pairs === undefined) {
    pairs = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
      .join(',');
    pairsCache.set(labels, pairs);
  }
  return pairs;
}

function labelText(labels: Readonly<Record<string, string>>, le?: string): string {
  const pairs = labelPairs(labels);
  if (le === undefined) return pairs === '' ? '' : `{${pairs}}`;
  return pairs === '' ? `{le="${le}"}` : `{${pairs},le="${le}"}`;
}

/** Prometheus text exposition of a snapshot: one `# TYPE` per family (dots in names become underscores), cumulative histogram buckets ending in +Inf, then _sum and _count (= the +Inf bucket). */
export function toPrometheus(samples: readonly StatSample[]): string {
  const families = new Map<string, StatSample[]>();
  for (const sample of samples) {
    let family = familyCache.get(sample.name);
    if (family === undefined) familyCache.set(sample.name, (family = familyName(sample.name)));
    const members = families.get(family);
    if (members) members.push(sample);
    else families.set(family, [sample]);
  }
  const lines: string[] = [];
  for (const [family, members] of families) {
    lines.push(`# TYPE ${family} ${members[0]!.kind}`);
    for (const s of members) {
      if (s.kind !== 'histogram') {
        lines.push(`${family}${labelText(s.labels)} ${formatValue(s.value)}`);
        continue;
      }
      let cumulative = 0;
      s.bounds.forEach((bound, i) => {
        cumulative += s.buckets[i]!;
        lines.push(`${family}_bucket${labelText(s.labels, formatValue(bound))} ${formatValue(cumulative)}`);
      });
      // +Inf and _count from the buckets themselves: a reading taken between a writer's bucket and
      // count stores would otherwise expose a non-monotonic histogram.
      cumulative += s.buckets[s.bounds.length]!;
      lines.push(`${family}_bucket${labelText(s.labels, '+Inf')} ${formatValue(cumulative)}`);
      lines.push(`${family}_sum${labelText(s.labels)} ${formatValue(s.sum)}`);
      lines.push(`${family}_count${labelText(s.labels)} ${formatValue(cumulative)}`);
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
