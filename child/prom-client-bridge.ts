/**
 * Keeps an app's prom-client registry and makes its counters and histograms continuous across
 * reloads and crashes: every `inc()` and `observe()` of a metric in the registry (directly, through
 * `labels()`, or a `startTimer()` end) is written through to the same name in Baton's shared
 * segment before it returns, so a generation that crashes right after counting has counted.
 * metrics() answers with the segment's totals for those families (gauges and summaries,
 * per-process by nature, come from prom-client as they are).
 *
 * prom-client is the app's own dependency and is not imported here: the bridge wraps the
 * methods of the metric objects in the registry (prom-client 15), including those registered
 * later, and copies once what a metric counted before it was bridged.
 */
import { stats } from './sdk.ts';
import { cleanHelp } from '../shared/stats/stat-help.ts';
import { toPrometheus, type Counter, type Histogram, type StatSample } from '../shared/stats/index.ts';

/** What the bridge uses of a prom-client Registry. */
export interface PromClientRegistry {
  getMetricsAsJSON(): Promise<PromMetric[]>;
  getSingleMetricAsString(name: string): Promise<string>;
  getMetricsAsArray(): object[];
  registerMetric(metric: object): void;
}

/** prom-client's MetricObjectWithValues, loosely: its `type` is declared as an enum but holds 'counter', 'histogram', … */
interface PromMetric {
  name: string;
  help: string;
  type: unknown;
  values: readonly { value: number; labels: object; metricName?: string }[];
}

/** What the bridge reads and wraps on a prom-client metric object. */
interface MetricObject {
  name: string;
  help: string;
  type?: string;
  labelNames?: readonly string[];
  upperBounds?: readonly number[];
  enableExemplars?: boolean;
  get(): Promise<PromMetric>;
  [method: string]: unknown;
}

/** Options of bridgePromClient. */
export interface BridgeOptions {
  /** @deprecated Ignored: every count is written through as it happens, there is nothing left to copy periodically. */
  intervalMs?: number;
}

/** A bridged registry. */
export interface PromClientBridge {
  /** Resolves once what the metrics counted before they were bridged is in the segment (every later count is written as it happens). */
  sync(): Promise<void>;
  /** Prometheus text: counters and histograms summed over every generation, the rest as prom-client has them. */
  metrics(): Promise<string>;
  /** Content-Type of metrics(). */
  readonly contentType: string;
  /** Stops writing through: the metrics' own methods are put back. */
  close(): void;
}

type LabelValues = Record<string, string>;
type Fn = (...args: unknown[]) => unknown;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function labelsOf(raw: unknown): LabelValues {
  const out: LabelValues = {};
  if (isObject(raw)) for (const [k, v] of Object.entries(raw)) if (v !== undefined) out[k] = String(v);
  return out;
}

/** True while a wrapped method runs: prom-client's labels() handles call the metric's own methods, which must not count a second time. */
let inside = false;

/** Calls prom-client's `fn` first (what it refuses — a bad label, a negative increment — is not counted), then `mirror(args)` unless this is a nested call. */
function guarded(fn: Fn, self: unknown, args: unknown[], mirror: (args: unknown[]) => void): unknown {
  if (inside) return fn.apply(self, args);
  inside = true;
  let result: unknown;
  try {
    result = fn.apply(self, args);
  } finally {
    inside = false;
  }
  mirror(args);
  return result;
}

/** Baton's handles of one prom-client metric, one per label set, made on first use. */
class Mirror {
  readonly #metric: MetricObject;
  readonly #handles = new Map<string, Counter | Histogram | null>();
  /** While the copy of what the metric counted before the bridge is pending: what was written since, per series. */
  since: Map<string, number> | undefined = new Map();

  constructor(metric: MetricObject) {
    this.#metric = metric;
  }

  /** The series key of prom-client labels (values in label-name order; no string is built for a metric without labels). */
  key(labels: unknown): string {
    const names = this.#metric.labelNames ?? [];
    if (names.length === 0 || !isObject(labels)) return '';
    let key = '';
    for (let i = 0; i < names.length; i++) {
      const v = labels[names[i]!];
      key += `${i === 0 ? '' : '\u0000'}${v === undefined ? '\u0001' : String(v)}`;
    }
    return key;
  }

  /** Baton's handle for prom-client `labels` (raw: values may be numbers); null when the segment refused the stat. */
  handle(labels: unknown): Counter | Histogram | null {
    const key = this.key(labels);
    const handle = this.#handles.get(key);
    return handle !== undefined ? handle : this.#create(key, labelsOf(labels));
  }

  #create(key: string, labels: LabelValues): Counter | Histogram | null {
    let handle: Counter | Histogram | null;
    const m = this.#metric;
    const help = cleanHelp(String(m.help ?? '')) || undefined;
    try {
      if (m.type === 'counter') handle = stats.counter(m.name, { labels, ...(help ? { help } : {}) });
      else handle = stats.histogram(m.name, { buckets: m.upperBounds ?? [], labels, ...(help ? { help } : {}) });
    } catch (err) {
      process.emitWarning(`prom-client bridge: ${m.name} is not mirrored in Baton's segment: ${(err as Error).message}`, 'BatonStatsWarning');
      handle = null;
    }
    this.#handles.set(key, handle);
    return handle;
  }

  inc(labels: unknown, value: number): void {
    if (!(value > 0)) return;
    (this.handle(labels) as Counter | null)?.inc(value);
    if (this.since) {
      const key = this.key(labels);
      this.since.set(key, (this.since.get(key) ?? 0) + value);
    }
  }

  observe(labels: unknown, value: number): void {
    if (Number.isFinite(value)) (this.handle(labels) as Histogram | null)?.record(value);
  }
}

/** Bridges `registry` (e.g. prom-client's default `register`) to Baton's shared segment. */
export function bridgePromClient(registry: PromClientRegistry, _options: BridgeOptions = {}): PromClientBridge {
  const mirrors = new Map<MetricObject, Mirror>();
  const undo: (() => void)[] = [];
  let closed = false;

  /** Wraps `name` on the metric with an accessor, so prom-client's constructor, which assigns it after registering, assigns the original. */
  const intercept = (m: MetricObject, name: 'inc' | 'observe', mirror: (args: unknown[]) => void): void => {
    const own = Object.getOwnPropertyDescriptor(m, name);
    let original = own && 'value' in own ? (own.value as Fn | undefined) : undefined;
    const proto = Object.getPrototypeOf(m) as Record<string, Fn>;
    const wrapper = function (this: MetricObject, ...args: unknown[]): unknown {
      return guarded(original ?? proto[name]!, this, args, mirror);
    };
    Object.defineProperty(m, name, { configurable: true, enumerable: false, get: () => (closed ? original : wrapper), set: (fn: Fn) => (original = fn) });
    undo.push(() => {
      if (original) Object.defineProperty(m, name, { configurable: true, writable: true, enumerable: true, value: original });
      else delete m[name];
    });
  };

  const bridge = (m: MetricObject): Promise<void> => {
    if (mirrors.has(m)) return Promise.resolve();
    // By the class's methods: a metric registers from its constructor, before `type` is set.
    const proto = Object.getPrototypeOf(m) as Record<string, unknown>;
    const counter = typeof proto.incWithoutExemplar === 'function' || (typeof proto.inc === 'function' && typeof proto.dec !== 'function');
    const histogram = typeof proto.observeWithoutExemplar === 'function' || (typeof proto.observe === 'function' && typeof proto.zero === 'function');
    if (!counter && !histogram) return Promise.resolve(); // gauges and summaries stay per process
    const mirror = new Mirror(m);
    mirrors.set(m, mirror);
    // What it counted so far: a histogram's figures are taken now, a counter's series objects are
    // live, so its copy subtracts what is written through meanwhile.
    const before = m.type === 'counter' || m.type === 'histogram' ? m.get() : undefined;
    if (counter) intercept(m, 'inc', (args) => {
      if (m.type !== 'counter') return;
      if (m.enableExemplars && isObject(args[0])) {
        const o = args[0] as { labels?: unknown; value?: unknown };
        mirror.inc(o.labels, o.value === undefined ? 1 : Number(o.value));
      } else if (isObject(args[0])) mirror.inc(args[0], args[1] == null ? 1 : Number(args[1]));
      else mirror.inc({}, args[0] == null ? 1 : Number(args[0]));
    });
    if (histogram) intercept(m, 'observe', (args) => {
      if (m.type !== 'histogram') return;
      if (m.enableExemplars && isObject(args[0])) {
        const o = args[0] as { labels?: unknown; value?: unknown };
        mirror.observe(o.labels, Number(o.value));
      } else if (isObject(args[0])) mirror.observe(args[0], Number(args[1]));
      else mirror.observe({}, Number(args[0]));
    });
    // labels(...) hands out inc/observe functions bound to those labels; a histogram's do not go
    // through its observe method, so they are wrapped where they are handed out.
    const labelsFn = m.labels as Fn | undefined;
    if (typeof labelsFn === 'function') {
      m.labels = function (this: MetricObject, ...args: unknown[]): unknown {
        const bound = labelsFn.apply(this, args) as Record<string, unknown>;
        if (closed || !isObject(bound)) return bound;
        const labels = args.length === 1 && isObject(args[0]) ? args[0] : Object.fromEntries((m.labelNames ?? []).map((n, i) => [n, args[i]]));
        const out = { ...bound };
        if (typeof bound.inc === 'function' && m.type === 'counter') {
          const inc = bound.inc as Fn;
          const count = (a: unknown[]) => mirror.inc(labels, a[0] == null ? 1 : Number(a[0]));
          out.inc = (...a: unknown[]) => guarded(inc, undefined, a, count);
        }
        if (typeof bound.observe === 'function' && m.type === 'histogram') {
          const observe = bound.observe as Fn;
          const record = (a: unknown[]) => mirror.observe(labels, Number(a[0]));
          out.observe = (...a: unknown[]) => guarded(observe, undefined, a, record);
        }
        return out;
      };
      undo.push(() => delete m.labels);
    }
    return catchUp(m, mirror, before);
  };

  // Metrics registered from now on: prom-client registers a metric from its constructor, before
  // the subclass sets its methods, which the accessors above catch.
  const registerMetric = registry.registerMetric;
  registry.registerMetric = function (metric: object): void {
    registerMetric.call(this, metric);
    if (!closed) void bridge(metric as MetricObject);
  };
  undo.push(() => {
    registry.registerMetric = registerMetric;
  });
  const caughtUp = Promise.all(registry.getMetricsAsArray().map((m) => bridge(m as MetricObject))).then(() => undefined);

  return {
    sync: () => caughtUp,
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    async metrics(): Promise<string> {
      await caughtUp;
      const parts: string[] = [];
      const json = await registry.getMetricsAsJSON();
      const help = new Map<string, string>();
      const samples: StatSample[] = [];
      const all = stats.snapshot();
      const bridged = new Set([...mirrors.keys()].filter((m) => m.type === 'counter' || m.type === 'histogram').map((m) => m.name));
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
      closed = true;
      for (const u of undo.splice(0).reverse()) u();
    },
  };
}

/** Copies into the segment what `m` counted before it was bridged (`before`: its figures then). */
async function catchUp(m: MetricObject, mirror: Mirror, before: Promise<PromMetric> | undefined): Promise<void> {
  let metric: PromMetric | undefined;
  try {
    metric = await before;
  } catch {
    metric = undefined; // a collect() that throws: nothing to copy
  }
  const since = mirror.since ?? new Map<string, number>();
  mirror.since = undefined;
  if (!metric) return;
  if (m.type === 'counter') {
    for (const v of metric.values) {
      const labels = labelsOf(v.labels);
      const earlier = v.value - (since.get(mirror.key(labels)) ?? 0);
      if (earlier > 0) (mirror.handle(labels) as Counter | null)?.inc(earlier);
    }
    return;
  }
  const series = new Map<string, { labels: LabelValues; cumulative: number[]; sum: number }>();
  for (const v of metric.values) {
    const bucket = v.metricName === `${m.name}_bucket`;
    const { le: _le, ...rest } = labelsOf(v.labels);
    const key = mirror.key(rest);
    let s = series.get(key);
    if (!s) series.set(key, (s = { labels: rest, cumulative: [], sum: 0 }));
    if (bucket) s.cumulative.push(v.value);
    else if (v.metricName === `${m.name}_sum`) s.sum = v.value;
  }
  for (const s of series.values()) {
    const counts = s.cumulative.map((c, i) => c - (i > 0 ? s.cumulative[i - 1]! : 0));
    if (counts.some((c) => c > 0)) (mirror.handle(s.labels) as Histogram | null)?.merge(counts, s.sum);
  }
}
