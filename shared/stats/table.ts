/**
 * The stat table: names and labels checked and encoded, descriptors appended (under the
 * registration lock) and decoded into a per-process catalog that follows what others publish.
 */
import { BatonError } from '../errors.ts';
import { CELL_BYTES, E, ENTRY_BYTES, H, KIND_CODES, STATS_ERR, invalid, kindName, type StatKind } from './layout.ts';
import type { Segment } from './files.ts';
import type { SegmentSet } from './segment.ts';

/** Label names to values. */
export type Labels = Readonly<Record<string, string>>;

/** A published stat as this process decoded it. */
export interface Descriptor {
  readonly kind: StatKind;
  readonly name: string;
  readonly labels: Labels;
  /** Canonical name + sorted labels (the JSON stored in the arena). */
  readonly key: string;
  /** Histogram bucket upper bounds (without +Inf); empty for counters and gauges. */
  readonly bounds: readonly number[];
  readonly segment: number;
  /** First cell; a histogram has bounds.length + 1 bucket cells, then sum, then count. */
  readonly cell: number;
  readonly cells: number;
}

const NAME = /^[a-zA-Z_][a-zA-Z0-9_.:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Most bounds a histogram may have. */
export const MAX_BOUNDS = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY: Labels = Object.freeze({});

/** The Prometheus family a dotted name belongs to (dots become underscores). */
export function familyName(name: string): string {
  return name.replaceAll('.', '_');
}

/** Checks a name and labels; returns the canonical key and frozen, sorted labels. */
export function statKey(kind: StatKind, name: string, labels?: Record<string, string>): { key: string; labels: Labels } {
  if (typeof name !== 'string' || !NAME.test(name)) {
    invalid(`stat name ${JSON.stringify(name)} must match ${NAME.source}`);
  }
  if (labels === undefined) return { key: JSON.stringify([name, EMPTY]), labels: EMPTY };
  if (typeof labels !== 'object' || labels === null) invalid(`labels of ${name} must be an object of strings`);
  const sorted: Record<string, string> = {};
  for (const label of Object.keys(labels).sort()) {
    const value = labels[label];
    if (!LABEL_NAME.test(label) || label.startsWith('__')) {
      invalid(`label name ${JSON.stringify(label)} of ${name} must match ${LABEL_NAME.source} and not start with "__"`);
    }
    if (kind === 'histogram' && label === 'le') invalid(`histogram ${name} cannot have a label named "le"`);
    if (typeof value !== 'string') invalid(`label ${label} of ${name} must be a string, got ${typeof value}`);
    sorted[label] = value;
  }
  const frozen = Object.freeze(sorted);
  return { key: JSON.stringify([name, frozen]), labels: frozen };
}

/** Checks histogram bounds: finite, strictly increasing, 1 to MAX_BOUNDS of them. */
export function checkBounds(name: string, bounds: readonly number[]): number[] {
  if (!Array.isArray(bounds) || bounds.length === 0 || bounds.length > MAX_BOUNDS) {
    invalid(`histogram ${name} needs 1 to ${MAX_BOUNDS} bucket bounds`);
  }
  bounds.forEach((b, i) => {
    if (typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!)) {
      invalid(`histogram ${name} bounds must be finite and strictly increasing, got [${bounds.join(', ')}]`);
    }
  });
  return [...bounds];
}

/** The stats published in every segment, decoded once per process. */
export class Catalog {
  readonly set: SegmentSet;
  readonly #byKey = new Map<string, Descriptor>();
  readonly #kindByFamily = new Map<string, StatKind>();
  readonly #list: Descriptor[] = [];
  readonly #seen: number[] = [];

  constructor(set: SegmentSet) {
    this.set = set;
  }

  /** Maps new segments and decodes newly published descriptors. */
  sync(): void {
    this.set.refresh();
    for (const segment of this.set.segments) {
      const count = Atomics.load(segment.i32, H.statCount);
      for (let i = this.#seen[segment.index] ?? 0; i < count; i++) this.#add(this.#decode(segment, i));
      this.#seen[segment.index] = count;
    }
  }

  /** The descriptor of a key, if this process has seen it published. */
  get(key: string): Descriptor | undefined {
    return this.#byKey.get(key);
  }

  /** Kind of a family already registered under any labels. */
  familyKind(name: string): StatKind | undefined {
    return this.#kindByFamily.get(familyName(name));
  }

  /** Every descriptor seen, in registration order. */
  all(): readonly Descriptor[] {
    return this.#list;
  }

  /** Appends a descriptor (caller holds the lock and has synced); undefined when maxBytes allows no new segment. */
  append(kind: StatKind, name: string, labels: Labels, key: string, bounds: readonly number[]): Descriptor | undefined {
    const layout = this.set.layout;
    const keyBytes = encoder.encode(key);
    const boundsBytes = bounds.length * CELL_BYTES;
    const arenaNeeded = boundsBytes + Math.ceil(keyBytes.length / 8) * 8;
    const cells = kind === 'histogram' ? bounds.length + 3 : 1;
    if (arenaNeeded > layout.arenaBytes || cells > layout.cellsPerSegment) {
      invalid(`${name} needs ${arenaNeeded} arena bytes and ${cells} cells; a segment has ${layout.arenaBytes} and ${layout.cellsPerSegment}`);
    }
    const fits = (s: Segment) =>
      s.i32[H.statCount]! < layout.statsPerSegment &&
      s.i32[H.arenaUsed]! + arenaNeeded <= layout.arenaBytes &&
      s.i32[H.cellsUsed]! + cells <= layout.cellsPerSegment;
    let segment = this.set.segments[this.set.segments.length - 1]!;
    if (!fits(segment)) {
      const grown = this.set.grow();
      if (!grown) return undefined;
      segment = grown;
    }
    const { i32, f64, u8 } = segment;
    const boundsOffset = i32[H.arenaUsed]!;
    const keyOffset = boundsOffset + boundsBytes;
    const cell = i32[H.cellsUsed]!;
    const index = i32[H.statCount]!;
    f64.set(bounds, (layout.arenaOffset + boundsOffset) / CELL_BYTES);
    u8.set(keyBytes, layout.arenaOffset + keyOffset);
    const entry = (layout.tableOffset + index * ENTRY_BYTES) / 4;
    i32[entry + E.kind] = KIND_CODES[kind];
    i32[entry + E.keyOffset] = keyOffset;
    i32[entry + E.keyLength] = keyBytes.length;
    i32[entry + E.boundsOffset] = boundsOffset;
    i32[entry + E.boundsCount] = bounds.length;
    i32[entry + E.cell] = cell;
    Atomics.store(i32, H.arenaUsed, boundsOffset + arenaNeeded);
    Atomics.store(i32, H.cellsUsed, cell + cells);
    Atomics.store(i32, H.statCount, index + 1); // publish
    this.sync();
    return this.#byKey.get(key);
  }

  #decode(segment: Segment, index: number): Descriptor {
    const layout = this.set.layout;
    const { i32, f64, u8 } = segment;
    const entry = (layout.tableOffset + index * ENTRY_BYTES) / 4;
    const kind = kindName(i32[entry + E.kind]!);
    const keyOffset = layout.arenaOffset + i32[entry + E.keyOffset]!;
    const key = decoder.decode(u8.subarray(keyOffset, keyOffset + i32[entry + E.keyLength]!));
    if (!kind) throw new BatonError(STATS_ERR.invalid, `stats: segment ${segment.index} entry ${index} is damaged`);
    const [name, labels] = JSON.parse(key) as [string, Record<string, string>];
    const boundsStart = (layout.arenaOffset + i32[entry + E.boundsOffset]!) / CELL_BYTES;
    const bounds = Object.freeze(Array.from(f64.subarray(boundsStart, boundsStart + i32[entry + E.boundsCount]!)));
    return Object.freeze({
      kind,
      name,
      labels: Object.freeze(labels),
      key,
      bounds,
      segment: segment.index,
      cell: i32[entry + E.cell]!,
      cells: kind === 'histogram' ? bounds.length + 3 : 1,
    });
  }

  #add(d: Descriptor): void {
    this.#list.push(d); // a duplicate (which the lock rules out) would show in snapshots
    if (!this.#byKey.has(d.key)) this.#byKey.set(d.key, d);
    const family = familyName(d.name);
    if (!this.#kindByFamily.has(family)) this.#kindByFamily.set(family, d.kind);
  }
}
