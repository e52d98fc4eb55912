/**
 * Registration: a stat's descriptor found or appended under the registration lock, and one
 * cached handle (handles.ts) per stat and process.
 */
import { H, SegmentDamage, invalid, type StatKind } from './layout.ts';
import { Catalog, checkBounds, statKey, type Descriptor, type Labels } from './table.ts';
import { GaugeHandle, HistogramHandle, REBASE_MS, SharedCounterHandle, SoleCounterHandle, type Counter, type Gauge, type Histogram } from './handles.ts';
import { cleanHelp } from './stat-help.ts';

export type { Counter, Gauge, Histogram } from './handles.ts';

/** Name of the counter of registrations that did not fit (maxBytes, maxNameLength). */
export const OVERFLOW_STAT = 'baton.stats.overflow';

type Handle = Counter | Gauge | Histogram;

/** Options of a Registry. */
export interface RegistryOptions {
  /** This process's writer index; without one, handles are no-ops. */
  writer: number | undefined;
  /** True when no other process writes this writer's slot while this one lives (a generation's slot, a private segment): counters then keep their value in the handle and only store it. @default false */
  soleWriter?: boolean;
  /** How long registration waits for the lock held by a live process before giving up (the stat is then not recorded, as an overflow). @default 1000 */
  lockTimeoutMs?: number;
}

/** Registers stats in the shared segments and hands out handles over this process's writer slots. */
export class Registry {
  readonly catalog: Catalog;
  readonly writer: number | undefined;
  readonly #lockTimeoutMs: number;
  readonly #handles = new Map<string, { kind: StatKind; bounds: readonly number[]; handle: Handle; descriptor?: Descriptor; help?: string }>();
  readonly #sole: boolean;
  readonly #soleCounters: SoleCounterHandle[] = [];
  #warned = false;

  constructor(catalog: Catalog, options: RegistryOptions) {
    this.catalog = catalog;
    this.writer = options.writer;
    this.#sole = options.soleWriter ?? false;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 1_000;
  }

  /** The counter `name` with `labels`, registered on first use in any process; `help` is stored with it (cleaned: one line, at most MAX_HELP_BYTES), replacing what an earlier registration stored. */
  counter(name: string, labels?: Record<string, string>, help?: string): Counter {
    return this.#register('counter', name, labels, [], help) as Counter;
  }

  /** The gauge `name` with `labels` (and `help`, as for counter). */
  gauge(name: string, labels?: Record<string, string>, help?: string): Gauge {
    return this.#register('gauge', name, labels, [], help) as Gauge;
  }

  /** The histogram `name` with these bucket bounds (every registration of it must give the same), `labels` and `help`. */
  histogram(name: string, bounds: readonly number[], labels?: Record<string, string>, help?: string): Histogram {
    return this.#register('histogram', name, labels, checkBounds(name, bounds), help) as Histogram;
  }

  #register(kind: StatKind, name: string, rawLabels: Record<string, string> | undefined, bounds: readonly number[], rawHelp: string | undefined): Handle {
    const { key, labels } = statKey(kind, name, rawLabels);
    const help = rawHelp === undefined ? undefined : cleanHelp(String(rawHelp)) || undefined;
    const cached = this.#handles.get(key);
    if (cached) {
      checkSame(key, cached, kind, bounds);
      if (help !== undefined && help !== cached.help && cached.descriptor) {
        this.#setHelp(cached.descriptor, help);
        cached.help = help;
      }
      return cached.handle;
    }
    let handle: Handle;
    if (this.writer === undefined) {
      this.#warnOnce(`stats: this process has no writer slot in ${this.catalog.set.instance}; what it records is dropped`);
      handle = this.#scratch(kind, bounds);
    } else {
      const descriptor = this.#find(kind, name, labels, key, bounds, help);
      if (descriptor) {
        checkSame(key, descriptor, kind, bounds);
        if (help !== undefined) this.#setHelp(descriptor, help);
        const values = this.catalog.set.segments[descriptor.segment]!.values;
        const index = this.writer * this.catalog.set.layout.regionCells + descriptor.cell;
        handle = this.#make(kind, values, index, bounds);
        this.#handles.set(key, { kind, bounds, handle, descriptor, ...(help !== undefined ? { help } : {}) });
        return handle;
      }
      handle = this.#scratch(kind, bounds);
    }
    this.#handles.set(key, { kind, bounds, handle });
    return handle;
  }

  /** Stores `help` with a published stat unless it already has that text; a lock held too long or a full arena leave the old text (help is not worth failing a registration for). */
  #setHelp(descriptor: Descriptor, help: string): void {
    const { catalog } = this;
    if (catalog.helpOf(descriptor) === help) return;
    try {
      catalog.set.lock(this.#lockTimeoutMs);
    } catch {
      return;
    }
    try {
      catalog.setHelp(descriptor, help);
    } finally {
      catalog.set.unlock();
    }
  }

  #make(kind: StatKind, values: Float64Array, index: number, bounds: readonly number[]): Handle {
    if (kind === 'counter') {
      if (!this.#sole) return new SharedCounterHandle(values, index);
      const handle = new SoleCounterHandle(values, index);
      if (this.#soleCounters.push(handle) === 1) {
        setInterval(() => {
          for (const c of this.#soleCounters) c.rebase();
        }, REBASE_MS).unref();
      }
      return handle;
    }
    if (kind === 'gauge') return new GaugeHandle(values, index);
    return new HistogramHandle(values, index, bounds);
  }

  /** A handle over private scratch cells: same class as a real one (call sites stay monomorphic), writes go nowhere shared. */
  #scratch(kind: StatKind, bounds: readonly number[]): Handle {
    return this.#make(kind, new Float64Array(bounds.length + 3), 0, bounds);
  }

  /** The published descriptor of key, appended if new; undefined (counted as overflow) when it does not fit. */
  #find(kind: StatKind, name: string, labels: Labels, key: string, bounds: readonly number[], help?: string): Descriptor | undefined {
    const { catalog } = this;
    let descriptor = catalog.get(key);
    if (descriptor) return descriptor;
    catalog.sync(); // registered by another process since we last looked: no lock needed
    descriptor = catalog.get(key);
    if (descriptor) return descriptor;
    const maxNameLength = catalog.set.header[H.maxNameLength]!;
    const length = Buffer.byteLength(key);
    if (length > maxNameLength) {
      this.#overflow(`stats: "${name}" with its labels takes ${length} bytes, over maxNameLength ${maxNameLength}`);
      return undefined;
    }
    try {
      catalog.set.lock(this.#lockTimeoutMs);
    } catch (err) {
      // A registration holds the lock for microseconds: a process sitting on it is wedged, and
      // stats are not worth stopping the program for. Said once, counted as overflow.
      this.#overflow(`stats: no room for "${name}": ${(err as Error).message}`);
      return undefined;
    }
    try {
      catalog.sync();
      descriptor = catalog.get(key);
      if (descriptor) return descriptor;
      const family = catalog.familyKind(name);
      if (family && family !== kind) {
        invalid(`${name} cannot be a ${kind}: the name is already registered as a ${family}`);
      }
      try {
        descriptor = catalog.append(kind, name, labels, key, bounds, help);
      } catch (err) {
        // A damaged segment or a file planted at the next segment's name: no room, said why.
        if (!(err instanceof SegmentDamage)) throw err;
        this.#overflow(err.message);
        return undefined;
      }
    } finally {
      catalog.set.unlock();
    }
    if (!descriptor) {
      const { set } = catalog;
      const maxSegments = set.header[H.maxSegments]!;
      this.#overflow(
        maxSegments === 0
          ? `stats: no room for "${name}": the segments of ${set.instance} were destroyed (clean stop)`
          : `stats: no room for "${name}": the segments of ${set.instance} reached maxBytes (${maxSegments} × ${set.layout.segmentBytes} bytes)`,
      );
    }
    return descriptor;
  }

  #overflow(reason: string): void {
    this.#warnOnce(`${reason}; it is not recorded and counted in ${OVERFLOW_STAT} (further overflows are counted without a warning)`);
    // Through the handle: a sole counter's handle would overwrite an increment made beside it.
    const key = statKey('counter', OVERFLOW_STAT).key;
    const overflow = this.catalog.get(key);
    if (this.#handles.has(key) || (overflow && this.writer !== undefined)) this.counter(OVERFLOW_STAT).inc();
  }

  #warnOnce(message: string): void {
    if (this.#warned) return;
    this.#warned = true;
    this.catalog.set.logger.warn(message);
  }
}

function checkSame(key: string, found: { kind: StatKind; bounds: readonly number[] }, kind: StatKind, bounds: readonly number[]): void {
  if (found.kind !== kind) invalid(`${key} is registered as a ${found.kind}, not a ${kind}`);
  if (found.bounds.length !== bounds.length || found.bounds.some((b, i) => b !== bounds[i])) {
    invalid(`histogram ${key} is registered with bounds [${found.bounds.join(', ')}], not [${bounds.join(', ')}]`);
  }
}
