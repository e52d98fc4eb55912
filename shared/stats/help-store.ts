/**
 * Reading and writing the help texts a segment's arena holds (stat-help.ts says how a pointer is
 * packed), with one process-wide copy per text and segment: a family's series share one.
 */
import { E, H, type Layout } from './layout.ts';
import type { Segment } from './files.ts';
import { cleanHelp, packHelp, unpackHelp } from './stat-help.ts';

const decoder = new TextDecoder();

/** The help texts of one segment set, as this process read and wrote them. */
export class HelpStore {
  readonly #layout: Layout;
  /** Per segment: help word → text decoded, and text → word stored. */
  readonly #textByWord: Map<number, string>[] = [];
  readonly #wordByText: Map<string, number>[] = [];

  constructor(layout: Layout) {
    this.#layout = layout;
  }

  /** The cleaned help of the entry whose first word is `entry`; undefined when it has none or its pointer leaves the arena. */
  read(segment: Segment, entry: number): string | undefined {
    const word = Atomics.load(segment.i32, entry + E.help);
    if (word === 0) return undefined;
    const known = this.#textByWord[segment.index]?.get(word);
    if (known !== undefined) return known === '' ? undefined : known;
    const at = unpackHelp(word, this.#layout.arenaBytes);
    if (at === undefined) return undefined;
    const start = this.#layout.arenaOffset + at.offset;
    const text = cleanHelp(decoder.decode(segment.u8.subarray(start, start + at.length)));
    (this.#textByWord[segment.index] ??= new Map()).set(word, text);
    return text === '' ? undefined : text;
  }

  /** True when this process already wrote `help` in segment `index` (storing it again takes no arena). */
  has(index: number, help: string): boolean {
    return this.#wordByText[index]?.has(help) ?? false;
  }

  /** Points the entry at `help`, writing its bytes at the end of the arena unless already written there (caller holds the lock); false when the arena has no room. */
  store(segment: Segment, entry: number, help: string, bytes: Uint8Array): boolean {
    const { i32, u8 } = segment;
    const words = (this.#wordByText[segment.index] ??= new Map());
    let word = words.get(help);
    if (word === undefined) {
      const offset = i32[H.arenaUsed]!;
      const size = Math.ceil(bytes.length / 8) * 8;
      if (offset < 0 || offset % 8 !== 0 || offset + size > this.#layout.arenaBytes) return false;
      u8.set(bytes, this.#layout.arenaOffset + offset);
      Atomics.store(i32, H.arenaUsed, offset + size);
      word = packHelp(offset, bytes.length);
      words.set(help, word);
      (this.#textByWord[segment.index] ??= new Map()).set(word, help);
    }
    Atomics.store(i32, entry + E.help, word);
    return true;
  }
}
