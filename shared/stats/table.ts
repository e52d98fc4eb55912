/**
 * The stat table: names and labels checked and encoded, descriptors appended (under the
 * registration lock) and decoded into a per-process catalog that follows what others publish.
 */
import { CELL_BYTES, E, ENTRY_BYTES, H, KIND_CODES, SegmentDamage, invalid, kindName, type StatKind } from './layout.ts';
import type { Segment } from './files.ts';
import type { SegmentSet } from './segment.ts';
import { cleanHelp, packHelp, unpackHelp } from './stat-help.ts';

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
  /** Index of its entry in the segment's stat table. */
  readonly entry: number;
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
  /** Per segment: help word → text decoded, and text → word stored, so a family's series share one copy. */
  readonly #helpByWord: Map<number, string>[] = [];
  readonly #wordByHelp: Map<string, number>[] = [];

  constructor(set: SegmentSet) {
    this.set = set;
  }

  /** Maps new segments and decodes newly published descriptors. */
  sync(): void {
    this.set.refresh();
    const { statsPerSegment } = this.set.layout;
    for (const segment of this.set.segments) {
      const claimed = Atomics.load(segment.i32, H.statCount);
      const count = Math.max(0, Math.min(claimed, statsPerSegment));
      if (count !== claimed) {
        this.set.report(`count ${segment.index}`, `stats: segment ${segment.index} of ${this.set.instance} claims ${claimed} stats, the table holds ${statsPerSegment}: reading ${count}`);
      }
      for (let i = this.#seen[segment.index] ?? 0; i < count; i++) {
        const decoded = this.#decode(segment, i);
        if (typeof decoded !== 'string') this.#add(decoded);
        else {
          const offset = this.set.layout.tableOffset + i * ENTRY_BYTES;
          this.set.report(`entry ${segment.index} ${i}`, `stats: skipped segment ${segment.index} entry ${i} (byte offset ${offset}) of ${this.set.instance}: ${decoded}`);
        }
      }
      this.#seen[segment.index] = Math.max(count, this.#seen[segment.index] ?? 0);
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

  /** Appends a descriptor, with `help` (clean, at most MAX_HELP_BYTES) if given (caller holds the lock and has synced); undefined when maxBytes allows no new segment. */
  append(kind: StatKind, name: string, labels: Labels, key: string, bounds: readonly number[], help?: string): Descriptor | undefined {
    const layout = this.set.layout;
    const keyBytes = encoder.encode(key);
    const boundsBytes = bounds.length * CELL_BYTES;
    const arenaNeeded = boundsBytes + Math.ceil(keyBytes.length / 8) * 8;
    const helpBytes = help === undefined ? undefined : encoder.encode(help);
    const cells = kind === 'histogram' ? bounds.length + 3 : 1;
    if (arenaNeeded > layout.arenaBytes || cells > layout.cellsPerSegment) {
      invalid(`${name} needs ${arenaNeeded} arena bytes and ${cells} cells; a segment has ${layout.arenaBytes} and ${layout.cellsPerSegment}`);
    }
    for (const s of [this.set.segments[this.set.segments.length - 1]!]) {
      const used = [s.i32[H.statCount]!, s.i32[H.arenaUsed]!, s.i32[H.cellsUsed]!];
      if (used[0]! < 0 || used[0]! > layout.statsPerSegment || used[1]! < 0 || used[1]! > layout.arenaBytes || used[1]! % 8 !== 0 || used[2]! < 0 || used[2]! > layout.cellsPerSegment) {
        throw new SegmentDamage(
          `stats: segment ${s.index} of ${this.set.instance} is damaged (stats ${used[0]}, arena bytes ${used[1]}, cells ${used[2]} in its header): nothing more is registered in it`,
        );
      }
    }
    const helpNeeded = (s: Segment) => (help === undefined || this.#wordByHelp[s.index]?.has(help) ? 0 : Math.ceil(helpBytes!.length / 8) * 8);
    const fits = (s: Segment) =>
      s.i32[H.statCount]! < layout.statsPerSegment &&
      s.i32[H.arenaUsed]! + arenaNeeded + helpNeeded(s) <= layout.arenaBytes &&
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
    if (help !== undefined) this.#storeHelp(segment, entry, help, helpBytes!);
    Atomics.store(i32, H.cellsUsed, cell + cells);
    Atomics.store(i32, H.statCount, index + 1); // publish
    this.sync();
    return this.#byKey.get(key);
  }

  /** The descriptor of table entry `index`, or why it cannot be one: every offset is checked, the memory is untrusted. */
  #decode(segment: Segment, index: number): Descriptor | string {
    const layout = this.set.layout;
    const { i32, f64, u8 } = segment;
    const entry = (layout.tableOffset + index * ENTRY_BYTES) / 4;
    const code = i32[entry + E.kind]!;
    const kind = kindName(code);
    if (!kind) return `unknown kind ${code}`;
    const keyOffset = i32[entry + E.keyOffset]!;
    const keyLength = i32[entry + E.keyLength]!;
    if (keyOffset < 0 || keyLength <= 0 || keyOffset + keyLength > layout.arenaBytes) {
      return `key at arena offset ${keyOffset}, ${keyLength} bytes, is outside the ${layout.arenaBytes}-byte arena`;
    }
    const boundsOffset = i32[entry + E.boundsOffset]!;
    const boundsCount = i32[entry + E.boundsCount]!;
    if ((kind === 'histogram') !== boundsCount > 0 || boundsCount < 0 || boundsCount > MAX_BOUNDS) return `${kind} with ${boundsCount} bounds`;
    if (boundsOffset < 0 || boundsOffset % CELL_BYTES !== 0 || boundsOffset + boundsCount * CELL_BYTES > layout.arenaBytes) {
      return `bounds at arena offset ${boundsOffset} are outside the arena`;
    }
    const cell = i32[entry + E.cell]!;
    const cells = kind === 'histogram' ? boundsCount + 3 : 1;
    if (cell < 0 || cell + cells > layout.cellsPerSegment) return `cells ${cell} to ${cell + cells - 1} are outside the ${layout.cellsPerSegment} of a segment`;
    const start = layout.arenaOffset + keyOffset;
    const key = decoder.decode(u8.subarray(start, start + keyLength));
    let name: string;
    let labels: Labels;
    let bounds: readonly number[];
    try {
      const parsed = JSON.parse(key) as unknown;
      if (!Array.isArray(parsed) || parsed.length !== 2) throw new Error('not [name, labels]');
      const canonical = statKey(kind, parsed[0] as string, parsed[1] as Record<string, string>);
      if (canonical.key !== key) throw new Error('not in canonical form');
      name = parsed[0] as string;
      labels = canonical.labels;
      const boundsStart = (layout.arenaOffset + boundsOffset) / CELL_BYTES;
      bounds = kind === 'histogram' ? Object.freeze(checkBounds(name, Array.from(f64.subarray(boundsStart, boundsStart + boundsCount)))) : [];
    } catch (err) {
      return `its key at arena offset ${keyOffset} is not a stat name with labels (${(err as Error).message})`;
    }
    return Object.freeze({ kind, name, labels, key, bounds: Object.freeze(bounds), segment: segment.index, entry: index, cell, cells });
  }

  /** The help text stored with a stat, cleaned for printing; undefined when it has none or its pointer leaves the arena. Read fresh each time: a later registration may replace it. */
  helpOf(d: Descriptor): string | undefined {
    const { i32, u8 } = this.set.segments[d.segment]!;
    const layout = this.set.layout;
    const word = Atomics.load(i32, (layout.tableOffset + d.entry * ENTRY_BYTES) / 4 + E.help);
    if (word === 0) return undefined;
    const known = this.#helpByWord[d.segment]?.get(word);
    if (known !== undefined) return known;
    const at = unpackHelp(word, layout.arenaBytes);
    if (at === undefined) return undefined;
    const start = layout.arenaOffset + at.offset;
    const text = cleanHelp(decoder.decode(u8.subarray(start, start + at.length)));
    (this.#helpByWord[d.segment] ??= new Map()).set(word, text);
    return text === '' ? undefined : text;
  }

  /** Gives a published stat new help (caller holds the lock); false when its segment's arena has no room for the text (or a damaged header says so). */
  setHelp(d: Descriptor, help: string): boolean {
    const segment = this.set.segments[d.segment]!;
    return this.#storeHelp(segment, (this.set.layout.tableOffset + d.entry * ENTRY_BYTES) / 4, help, encoder.encode(help));
  }

  /** Points entry word `entry + E.help` at `help`, writing its bytes at the end of the arena unless this process already wrote them in that segment. */
  #storeHelp(segment: Segment, entry: number, help: string, bytes: Uint8Array): boolean {
    const { i32, u8 } = segment;
    const words = (this.#wordByHelp[segment.index] ??= new Map());
    let word = words.get(help);
    if (word === undefined) {
      const offset = i32[H.arenaUsed]!;
      const size = Math.ceil(bytes.length / 8) * 8;
      if (offset < 0 || offset % 8 !== 0 || offset + size > this.set.layout.arenaBytes) return false;
      u8.set(bytes, this.set.layout.arenaOffset + offset);
      Atomics.store(i32, H.arenaUsed, offset + size);
      word = packHelp(offset, bytes.length);
      words.set(help, word);
      (this.#helpByWord[segment.index] ??= new Map()).set(word, help);
    }
    Atomics.store(i32, entry + E.help, word);
    return true;
  }

  #add(d: Descriptor): void {
    this.#list.push(d); // a duplicate (which the lock rules out) would show in snapshots
    if (!this.#byKey.has(d.key)) this.#byKey.set(d.key, d);
    const family = familyName(d.name);
    if (!this.#kindByFamily.has(family)) this.#kindByFamily.set(family, d.kind);
  }
}
