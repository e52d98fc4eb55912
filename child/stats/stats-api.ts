/**
 * The SDK's registration front: help text and label names with a stat, checked at registration
 * against the Prometheus mapping (shared/stats/prom-names.ts) so a bad name fails where it is
 * registered rather than in a scrape, and the help kept for this process's metrics() text.
 */
import { BatonError } from '../../shared/errors.ts';
import type { Counter, Gauge, Histogram, Stats } from '../../shared/stats/index.ts';
import { exposition, promNames } from './stats-module.ts';
import type { StatKind } from '../../shared/stats/layout.ts';
import { helpProblem } from '../../shared/stats/stat-help.ts';

/** Options of a counter or gauge. */
export interface StatOptions {
  /** HELP text for the Prometheus family: one line, at most 511 bytes of UTF-8. It is stored with the stat in the segment, so the supervisor's /metrics prints it too. @default a generated line naming the stat */
  help?: string;
  /** Label names (the handle is then a family: `.labels(...values)`), or fixed label values. @default no labels */
  labels?: readonly string[] | Record<string, string>;
}

/** Options of a histogram. */
export interface HistogramOptions extends StatOptions {
  /** Strictly increasing bucket upper bounds (+Inf implied); required unless given positionally. */
  buckets?: readonly number[];
}

/** A labelled family: one handle per combination of label values, registered on first use. */
export interface Family<H> {
  /** The handle for these values, in the order of the label names (or as an object of them). */
  labels(...values: string[]): H;
  labels(values: Record<string, string>): H;
}

const OPTION_KEYS = new Set(['help', 'labels', 'buckets']);
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** True when the argument is an options object rather than old-style fixed labels (an object of strings whose keys are not all option names). */
export function isOptions(arg: unknown): arg is HistogramOptions {
  if (typeof arg !== 'object' || arg === null || Array.isArray(arg)) return false;
  const keys = Object.keys(arg);
  return keys.length > 0 && keys.every((k) => OPTION_KEYS.has(k));
}

function fail(name: string, why: string): never {
  throw new BatonError('ERR_STATS', `stat ${JSON.stringify(name)}: ${why}`);
}

/** What this process registered: help by Prometheus family, and which kind owns each family. */
export class StatsFront {
  readonly #stats: () => Stats;
  readonly #help = new Map<string, string>();
  readonly #kinds = new Map<string, { kind: StatKind; name: string }>();

  constructor(stats: () => Stats) {
    this.#stats = stats;
  }

  counter(name: string, arg?: Record<string, string> | StatOptions): Counter | Family<Counter> {
    return this.#register('counter', name, arg, (labels, help) => this.#stats().counter(name, labels, help));
  }

  gauge(name: string, arg?: Record<string, string> | StatOptions): Gauge | Family<Gauge> {
    return this.#register('gauge', name, arg, (labels, help) => this.#stats().gauge(name, labels, help));
  }

  histogram(name: string, a?: readonly number[] | HistogramOptions, b?: Record<string, string> | StatOptions): Histogram | Family<Histogram> {
    const rest: StatOptions = isOptions(b) ? b : b ? { labels: b as Record<string, string> } : {};
    const options: HistogramOptions = Array.isArray(a) ? { ...rest, buckets: a } : ((a ?? {}) as HistogramOptions);
    const bounds = options.buckets;
    if (!Array.isArray(bounds)) fail(name, 'a histogram needs its bucket bounds: histogram(name, [0.01, 0.1, 1]) or { buckets: [...] }');
    return this.#register('histogram', name, options, (labels, help) => this.#stats().histogram(name, bounds, labels, help));
  }

  /** Prometheus text of every stat in the segment (every generation's, summed), with the help registered here. */
  metrics(filter?: RegExp): string {
    const stats = this.#stats();
    const generations = stats.generations();
    return exposition().toPrometheus(stats.snapshot(filter), { ...(generations.length > 0 ? { generations } : {}), help: (f) => this.#help.get(f) });
  }

  #register<H>(
    kind: StatKind,
    name: string,
    arg: Record<string, string> | StatOptions | undefined,
    make: (labels: Record<string, string> | undefined, help: string | undefined) => H,
  ): H | Family<H> {
    const options: StatOptions = isOptions(arg) ? arg : arg === undefined ? {} : { labels: arg as Record<string, string> };
    if (typeof name !== 'string') fail(String(name), 'the name must be a string');
    const { family, extracted } = promNames().promName(kind, name);
    const owner = this.#kinds.get(family);
    if (owner && owner.kind !== kind) {
      fail(name, `as a ${kind} it maps to Prometheus family ${family}, which the ${owner.kind} ${JSON.stringify(owner.name)} already maps to; rename one of them`);
    }
    const { help } = options;
    if (help !== undefined) {
      const problem = helpProblem(help);
      if (problem !== undefined) fail(name, problem);
      const known = this.#help.get(family);
      if (known !== undefined && known !== options.help) fail(name, `family ${family} was registered with other help text (${JSON.stringify(known)})`);
    }
    const { labels } = options;
    if (Array.isArray(labels)) {
      const names = labels as readonly string[];
      for (const l of names) {
        if (typeof l !== 'string' || !LABEL_NAME.test(l) || l.startsWith('__')) fail(name, `label name ${JSON.stringify(l)} must match ${LABEL_NAME.source} and not start with "__"`);
        if (l in extracted) fail(name, `label ${l} is already taken by the name itself (${family}{${l}="${extracted[l]}"})`);
      }
      if (new Set(names).size !== names.length) fail(name, `label names ${JSON.stringify(names)} repeat`);
      if (kind === 'histogram' && names.includes('le')) fail(name, 'a histogram cannot have a label named "le"');
      this.#remember(kind, name, family, help);
      return family_(name, names, (labels) => make(labels, help));
    }
    for (const l of Object.keys(labels ?? {})) if (l in extracted) fail(name, `label ${l} is already taken by the name itself (${family}{${l}="${extracted[l]}"})`);
    const handle = make(labels as Record<string, string> | undefined, help);
    this.#remember(kind, name, family, help);
    return handle;
  }

  #remember(kind: StatKind, name: string, family: string, help: string | undefined): void {
    if (!this.#kinds.has(family)) this.#kinds.set(family, { kind, name });
    if (help !== undefined) this.#help.set(family, help);
  }
}

function family_<H>(name: string, names: readonly string[], make: (labels: Record<string, string>) => H): Family<H> {
  // One Map level per label, so a lookup is one Map.get per value and builds no key string: this
  // runs on every `labels(...).inc()`.
  const root = new Map<string, unknown>();
  let only: H | undefined; // a family with no label names has one handle
  const find = (values: readonly string[]): H => {
    if (values.length === 0) return (only ??= make({}));
    let level = root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(values[i]!, (next = new Map<string, unknown>()));
      level = next;
    }
    let handle = level.get(values[last]!) as H | undefined;
    if (handle === undefined) {
      handle = make(Object.fromEntries(names.map((n, i) => [n, values[i]!])));
      level.set(values[last]!, handle);
    }
    return handle;
  };
  return {
    labels(...args: (string | Record<string, string>)[]): H {
      if (names.length === 1 && args.length === 1 && typeof args[0] === 'string') {
        const handle = root.get(args[0]) as H | undefined;
        if (handle !== undefined) return handle;
      }
      if (args.length === names.length && args.every((a) => typeof a === 'string')) return find(args as string[]);
      if (args.length === 1 && typeof args[0] === 'object' && args[0] !== null) {
        const given = args[0];
        const extra = Object.keys(given).filter((k) => !names.includes(k));
        if (extra.length > 0) fail(name, `unknown label ${extra.join(', ')} (its labels are ${names.join(', ')})`);
        return find(names.map((n) => given[n] ?? ''));
      }
      if (args.length !== names.length) fail(name, `${args.length} label values given for ${names.length} labels (${names.join(', ')})`);
      return find(args.map(String));
    },
  } as Family<H>;
}
