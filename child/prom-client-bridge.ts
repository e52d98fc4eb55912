/**
 * Keeps an app's prom-client registry and makes its counters and histograms continuous across
 * reloads: what each prom-client counter and histogram gained since the last look is added to
 * the same name in Baton's shared segment, which every generation writes and retired ones stay
 * folded into; metrics() then answers with the segment's totals for those families (gauges and
 * summaries, per-process by nature, come from prom-client as they are).
 *
 * The deltas are taken on every metrics(), every `intervalMs`, and when the generation drains,
 * so a generation that is reloaded away loses nothing; one that crashes loses at most the last
 * interval. prom-client is the app's own dependency: it is not imported here, only its
 * registry's documented methods are called.
 */
import { onDrain, stats } from './sdk.ts';
import { toPrometheus, type StatSample } from '../shared/stats/index.ts';

/** What the bridge uses of a prom-client Registry (prom-client 14 and 15). */
export interface PromClientRegistry {
  getMetricsAsJSON(): Promise<PromMetric[]>;
  getSingleMetricAsString(name: string): Promise<string>;
}

/** prom-client's MetricObjectWithValues, loosely: its `type` is declared as an enum but holds 'counter', 'histogram', … */
interface PromMetric {
  name: string;
  help: string;
  type: unknown;
  values: readonly { value: number; labels: object; metricName?: string }[];
}

/** Options of bridgePromClient. */
export interface BridgeOptions {
  /** How often the deltas are copied into the segment besides on metrics() and drain; 0: only then. @default 1000 */
  intervalMs?: number;
}

/** A bridged registry. */
export interface PromClientBridge {
  /** Copies what changed into the segment (done for you on metrics(), the interval and drain). */
  sync(): Promise<void>;
  /** Prometheus text: counters and histograms summed over every generation, the rest as prom-client has them. */
  metrics(): Promise<string>;
  /** Content-Type of metrics(). */
  readonly contentType: string;
  /** Stops the interval. */
  close(): void;
}

type LabelValues = Record<string, string>;

function labelsOf(raw: object, without?: string): LabelValues {
  const out: LabelValues = {};
  for (const [k, v] of Object.entries(raw)) if (k !== without && v !== undefined) out[k] = String(v);
  return out;
}

const keyOf = (name: string, labels: LabelValues): string => `${name}\u0000${JSON.stringify(Object.entries(labels).sort())}`;

/** Bridges `registry` (e.g. prom-client's default `register`) to Baton's shared segment. */
export function bridgePromClient(registry: PromClientRegistry, options: BridgeOptions = {}): PromClientBridge {
  /** Last value seen of each counter series / histogram series' per-bucket counts and sum. */
  const seen = new Map<string, number[]>();
  const bridged = new Map<string, string>();
  let pending: Promise<void> = Promise.resolve();

  const syncOnce = async (): Promise<void> => {
    for (const metric of await registry.getMetricsAsJSON()) {
      const type = String(metric.type);
      if (type === 'counter') {
        bridged.set(metric.name, metric.help);
        for (const v of metric.values) {
          const labels = labelsOf(v.labels);
          const key = keyOf(metric.name, labels);
          const last = seen.get(key)?.[0] ?? 0;
          // Lower than before: the app reset it (counter.reset()); what it holds now is new.
          const delta = v.value >= last ? v.value - last : v.value;
          seen.set(key, [v.value]);
          const counter = stats.counter(metric.name, labels);
          if (delta > 0) counter.inc(delta);
        }
      } else if (type === 'histogram') {
        bridged.set(metric.name, metric.help);
        syncHistogram(metric, seen);
      }
    }
  };
  const sync = (): Promise<void> => (pending = pending.then(syncOnce, syncOnce));

  const interval = options.intervalMs ?? 1000;
  const timer = interval > 0 ? setInterval(() => void sync().catch(() => {}), interval) : undefined;
  timer?.unref();
  onDrain(async () => {
    if (timer) clearInterval(timer);
    await sync();
  });

  return {
    sync,
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    async metrics(): Promise<string> {
      await sync();
      const parts: string[] = [];
      const json = await registry.getMetricsAsJSON();
      const help = new Map<string, string>();
      const samples: StatSample[] = [];
      const all = stats.snapshot();
      for (const metric of json) {
        if (!bridged.has(metric.name)) {
          parts.push(await registry.getSingleMetricAsString(metric.name));
          continue;
        }
        const type = String(metric.type);
        for (const s of all) if (s.name === metric.name && s.kind === type) samples.push(s);
        help.set(type === 'counter' && !metric.name.endsWith('_total') ? `${metric.name}_total` : metric.name, metric.help);
      }
      const text = toPrometheus(samples, { help: (f) => help.get(f) });
      return [text.trimEnd(), ...parts].filter((p) => p !== '').join('\n') + '\n';
    },
    close(): void {
      if (timer) clearInterval(timer);
    },
  };
}

function syncHistogram(metric: PromMetric, seen: Map<string, number[]>): void {
  const series = new Map<string, { labels: LabelValues; bounds: number[]; cumulative: number[]; sum: number }>();
  for (const v of metric.values) {
    const bucket = v.metricName === `${metric.name}_bucket`;
    const labels = labelsOf(v.labels, bucket ? 'le' : undefined);
    const key = keyOf(metric.name, labels);
    let s = series.get(key);
    if (!s) series.set(key, (s = { labels, bounds: [], cumulative: [], sum: 0 }));
    if (bucket) {
      const le = (v.labels as { le?: unknown }).le;
      if (le !== '+Inf') s.bounds.push(Number(le));
      s.cumulative.push(v.value);
    } else if (v.metricName === `${metric.name}_sum`) s.sum = v.value;
  }
  for (const [key, s] of series) {
    const counts = s.cumulative.map((c, i) => c - (i > 0 ? s.cumulative[i - 1]! : 0));
    const last = seen.get(key);
    const reset = last !== undefined && counts.some((c, i) => c < (last[i] ?? 0));
    const base = last && !reset ? last : [];
    const delta = counts.map((c, i) => c - (base[i] ?? 0));
    const sumDelta = s.sum - (base[counts.length] ?? 0);
    seen.set(key, [...counts, s.sum]);
    const histogram = stats.histogram(metric.name, s.bounds, s.labels);
    histogram.merge(delta, sumDelta);
  }
}
