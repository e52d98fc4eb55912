/**
 * Help text stored with a stat in the segment, so the supervisor's /metrics (and `baton stats
 * --prometheus`) can print an app's HELP lines. A table entry's seventh word holds a packed
 * pointer into its segment's arena — offset / 8 in the high 23 bits, byte length in the low 9 —
 * written with one atomic store, so a reader never pairs one text's offset with another's length.
 * Zero (what every entry held before help existed) means none. The bytes come from any process
 * that maps the segment, so a reader checks the pointer and cleans the text before printing it.
 */

/** Most UTF-8 bytes of help text a stat stores (what the 9-bit length holds). */
export const MAX_HELP_BYTES = 511;

const LENGTH_BITS = 9;
const LENGTH_MASK = (1 << LENGTH_BITS) - 1;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const CONTROLS = new RegExp(CONTROL.source, 'g');
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The entry word for help at arena `offset` (a multiple of 8), `length` bytes. */
export function packHelp(offset: number, length: number): number {
  return (((offset / 8) << LENGTH_BITS) | length) | 0;
}

/** Arena offset and length of an entry's help word; undefined for none or one outside `arenaBytes`. */
export function unpackHelp(word: number, arenaBytes: number): { offset: number; length: number } | undefined {
  const packed = word >>> 0;
  const length = packed & LENGTH_MASK;
  const offset = (packed >>> LENGTH_BITS) * 8;
  if (length === 0 || offset + length > arenaBytes) return undefined;
  return { offset, length };
}

/** Help text as an exposition may print it: control characters (line breaks too) become spaces, and it is cut to MAX_HELP_BYTES at a character boundary. */
export function cleanHelp(text: string): string {
  const clean = text.replace(CONTROLS, ' ').trim();
  const bytes = encoder.encode(clean);
  if (bytes.length <= MAX_HELP_BYTES) return clean;
  // A character cut in two decodes as one U+FFFD at the end: drop it.
  return decoder.decode(bytes.subarray(0, MAX_HELP_BYTES)).replace(/\uFFFD$/, '');
}

/** Why `text` cannot be a stat's help (for an error at registration), or undefined when it can. */
export function helpProblem(text: unknown): string | undefined {
  if (typeof text !== 'string' || text.trim() === '') return 'help must be a non-empty string';
  const bytes = encoder.encode(text).length;
  if (bytes > MAX_HELP_BYTES) return `help is ${bytes} bytes of UTF-8; at most ${MAX_HELP_BYTES}`;
  if (CONTROL.test(text)) return 'help must be one line without control characters';
  return undefined;
}
