/**
 * The stat table: descriptors appended or reused (under the registration lock), retired by the
 * owner (reclaim.ts), and decoded into a per-process catalog that follows what others publish.
 */
import { CELL_BYTES, E, ENTRY_BYTES, FREE_KIND, H, KIND_CODES, SegmentDamage, invalid, type StatKind } from './layout.ts';
import type { Segment } from './files.ts';
import type { SegmentSet } from './segment.ts';
import { HelpStore } from './help-store.ts';
import { bumpEpoch, decodeFree, entryBase, findRoom, reuseEntry, roomOf, writeTombstone, type FreeEntry } from './reclaim.ts';
import { decodeEntry } from './entry.ts';
import { familyName, type Labels } from './stat-key.ts';

export { MAX_BOUNDS, checkBounds, familyName, statKey, type Labels } from './stat-key.ts';

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
  /** Its arena region (bounds, then key), which a retirement offers for reuse; 0 bytes when not contiguous. */
  readonly region: number;
  readonly bytes: number;
}

/** What a table entry decoded as: a stat, a tombstone, or nothing usable (damaged, or mid-write). */
export type Slot = Descriptor | FreeEntry | undefined;

/** Room in use in the segments, as `Stats.usage()` reports it. */
export interface TableUsage {
  segments: number;
  /** Live stats, and retired entries waiting for reuse. */
  stats: number;
  free: number;
  /** Summed over segments: table entries, value cells and arena bytes ever taken (reuse takes none). */
  entries: number;
  cells: number;
  arenaBytes: number;
}

const encoder = new TextEncoder();

/** The stats published in every segment, decoded once per process. */
export class Catalog {
  readonly set: SegmentSet;
  readonly #byKey = new Map<string, Descriptor>();
  #kindByFamily = new Map<string, StatKind>();
  #list: Descriptor[] = [];
  /** #list and #kindByFamily need rebuilding from #slots: an entry was retired or reused. */
  #stale = false;
  readonly #seen: number[] = [];
  /** Per segment and entry: what it decoded as, and its stamp then (-1: read it again at the next epoch). */
  readonly #slots: Slot[][] = [];
  readonly #stamps: number[][] = [];
  /** H.tableEpoch when the entries were last checked. */
  #epoch = 0;
  readonly #help: HelpStore;

  constructor(set: SegmentSet) {
    this.set = set;
    this.#help = new HelpStore(set.layout);
  }

  /** Maps new segments, decodes newly published descriptors and, when the epoch moved, re-reads the entries whose stamp did. */
  sync(): void {
    this.set.refresh();
    const { statsPerSegment } = this.set.layout;
    const epoch = Atomics.load(this.set.header, H.tableEpoch);
    const recheck = epoch !== this.#epoch;
    for (const segment of this.set.segments) {
      const k = segment.index;
      const claimed = Atomics.load(segment.i32, H.statCount);
      const count = Math.max(0, Math.min(claimed, statsPerSegment));
      if (count !== claimed) {
        this.set.report(`count ${k}`, `stats: segment ${k} of ${this.set.instance} claims ${claimed} stats, the table holds ${statsPerSegment}: reading ${count}`);
      }
      const seen = this.#seen[k] ?? 0;
      const stamps = (this.#stamps[k] ??= []);
      if (recheck) {
        for (let i = 0; i < seen; i++) {
          if (Atomics.load(segment.i32, entryBase(this.set.layout, i) + E.stamp) !== stamps[i]) this.#load(segment, i);
        }
      }
      for (let i = seen; i < count; i++) this.#load(segment, i);
      this.#seen[k] = Math.max(count, seen);
    }
    this.#epoch = epoch;
  }

  /** The epoch the entries were last checked at: a reader whose read ends at another one re-reads. */
  get epoch(): number {
    return this.#epoch;
  }

  /** (Re)decodes entry `i`, under its stamp: an entry caught mid-write is read again at the next epoch. */
  #load(segment: Segment, i: number): void {
    const k = segment.index;
    const at = entryBase(this.set.layout, i) + E.stamp;
    const slots = (this.#slots[k] ??= []);
    const stamps = (this.#stamps[k] ??= []);
    this.#remove(slots[i]);
    slots[i] = undefined;
    stamps[i] = -1;
    const stamp = Atomics.load(segment.i32, at);
    const offset = this.set.layout.tableOffset + i * ENTRY_BYTES;
    if ((stamp & 1) !== 0) {
      // Writers hold the lock: with it held here, an odd stamp is damage, not a write in progress.
      if (this.set.locked) this.set.report(`stamp ${k} ${i} ${stamp}`, `stats: skipped segment ${k} entry ${i} (byte offset ${offset}) of ${this.set.instance}: its stamp ${stamp} says a write is in progress, but none is`);
      return;
    }
    const decoded = segment.i32[entryBase(this.set.layout, i) + E.kind] === FREE_KIND ? decodeFree(segment, this.set.layout, i) : decodeEntry(segment, this.set.layout, i);
    if (Atomics.load(segment.i32, at) !== stamp) return; // rewritten meanwhile: the writer bumps the epoch after
    stamps[i] = stamp;
    if (typeof decoded === 'string') {
      this.set.report(`entry ${k} ${i} ${stamp}`, `stats: skipped segment ${k} entry ${i} (byte offset ${offset}) of ${this.set.instance}: ${decoded}`);
      return;
    }
    slots[i] = decoded;
    if (!('free' in decoded)) this.#add(decoded);
  }

  /** The descriptor of a key, if this process has seen it published. */
  get(key: string): Descriptor | undefined {
    this.#rebuild();
    return this.#byKey.get(key);
  }

  /** Kind of a family already registered under any labels. */
  familyKind(name: string): StatKind | undefined {
    this.#rebuild();
    return this.#kindByFamily.get(familyName(name));
  }

  /** Every live descriptor, in table order (registration order, a reused entry where its tombstone was). */
  all(): readonly Descriptor[] {
    this.#rebuild();
    return this.#list;
  }

  /** Entries in use and free, cells and arena bytes taken, over the mapped segments (call sync first). */
  usage(): TableUsage {
    let stats = 0;
    let free = 0;
    let entries = 0;
    let cells = 0;
    let arenaBytes = 0;
    for (const segment of this.set.segments) {
      for (const slot of this.#slots[segment.index] ?? []) {
        if (slot && 'free' in slot) free += 1;
        else if (slot) stats += 1;
      }
      entries += Atomics.load(segment.i32, H.statCount);
      cells += Atomics.load(segment.i32, H.cellsUsed);
      arenaBytes += Atomics.load(segment.i32, H.arenaUsed);
    }
    return { segments: this.set.segments.length, stats, free, entries, cells, arenaBytes };
  }

  /**
   * Turns these descriptors into tombstones (owner only, holding the registration lock, inside
   * set.exclusive, once no process can write them): see reclaim.ts.
   */
  retire(descriptors: readonly Descriptor[]): void {
    for (const d of descriptors) writeTombstone(this.set.segments[d.segment]!, this.set.layout, d);
    if (descriptors.length > 0) bumpEpoch(this.set.header);
  }

  /** Writes a new stat into the best-fitting tombstone of `cells` cells (caller holds the lock and has synced); false when none fits. */
  #reuse(kind: StatKind, keyBytes: Uint8Array, bounds: readonly number[], cells: number): boolean {
    const room = findRoom(this.set, this.#slots, cells, roomOf(bounds.length, keyBytes.length));
    if (!room) return false;
    reuseEntry(this.set.segments[room.segment]!, this.set.layout, room, kind, keyBytes, bounds);
    bumpEpoch(this.set.header);
    return true;
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
    if (this.#reuse(kind, keyBytes, bounds, cells)) {
      this.sync();
      const reused = this.get(key);
      if (reused && help !== undefined) this.#help.store(this.set.segments[reused.segment]!, entryBase(layout, reused.entry), help, helpBytes!);
      return reused;
    }
    const helpNeeded = (s: Segment) => (help === undefined || this.#help.has(s.index, help) ? 0 : Math.ceil(helpBytes!.length / 8) * 8);
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
    if (help !== undefined) this.#help.store(segment, entry, help, helpBytes!);
    Atomics.store(i32, H.cellsUsed, cell + cells);
    Atomics.store(i32, H.statCount, index + 1); // publish
    this.sync();
    return this.get(key);
  }

  /** The help text stored with a stat, cleaned for printing; undefined when it has none or its pointer leaves the arena. Read fresh each time: a later registration may replace it. */
  helpOf(d: Descriptor): string | undefined {
    return this.#help.read(this.set.segments[d.segment]!, entryBase(this.set.layout, d.entry));
  }

  /** Gives a published stat new help (caller holds the lock); false when its segment's arena has no room for the text (or a damaged header says so). */
  setHelp(d: Descriptor, help: string): boolean {
    return this.#help.store(this.set.segments[d.segment]!, entryBase(this.set.layout, d.entry), help, encoder.encode(help));
  }

  #add(d: Descriptor): void {
    if (this.#stale) return; // #rebuild picks it up from #slots
    if (!this.#byKey.has(d.key)) this.#byKey.set(d.key, d);
    this.#list.push(d); // a duplicate (which the lock rules out) would show in snapshots
    const family = familyName(d.name);
    if (!this.#kindByFamily.has(family)) this.#kindByFamily.set(family, d.kind);
  }

  #remove(slot: Slot): void {
    if (!slot || 'free' in slot) return;
    this.#stale = true;
  }

  #rebuild(): void {
    if (!this.#stale) return;
    this.#stale = false;
    this.#list = [];
    this.#kindByFamily = new Map();
    this.#byKey.clear();
    for (const slots of this.#slots) {
      for (const s of slots ?? []) {
        if (!s || 'free' in s) continue;
        this.#list.push(s);
        if (!this.#byKey.has(s.key)) this.#byKey.set(s.key, s);
        const family = familyName(s.name);
        if (!this.#kindByFamily.has(family)) this.#kindByFamily.set(family, s.kind);
      }
    }
  }
}
