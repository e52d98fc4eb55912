/**
 * `?filter=RE` and `baton stats --filter RE` as a linear-time match: a pattern from a client must
 * not stall the supervisor, and JavaScript's backtracking engine spends minutes on `(.*){1,7}X`.
 * re2js is RE2's automaton in JavaScript (no native build); the filter is a RegExp whose `test`
 * runs it, so every reader that takes a RegExp takes it unchanged.
 */
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import { BatonError } from '../../shared/errors.ts';

/** Longest filter accepted. */
export const MAX_FILTER_LENGTH = 256;

class LinearFilter extends RegExp {
  readonly #re: RE2JS;
  readonly #text: string;

  constructor(text: string, re: RE2JS) {
    // The RegExp part is never matched with (a pattern that matches nothing); the text is kept for messages.
    super('(?!)');
    this.#re = re;
    this.#text = text;
  }

  override test(name: string): boolean {
    return this.#re.matcher(name).find();
  }

  override toString(): string {
    return `/${this.#text}/`;
  }
}

/** `text` compiled to a linear-time filter; ERR_USAGE when it is too long or not RE2 syntax. */
export function statFilter(text: string): RegExp {
  if (text.length > MAX_FILTER_LENGTH) {
    throw new BatonError('ERR_USAGE', `invalid filter: ${text.length} characters, at most ${MAX_FILTER_LENGTH}`);
  }
  // Required on the first filter, not imported: the supervisor serves /stats without one far more
  // often, and re2js is ~1 MiB of its RSS.
  const { RE2JS: re2 } = createRequire(import.meta.url)('re2js') as typeof import('re2js');
  try {
    return new LinearFilter(text, re2.compile(text));
  } catch (err) {
    throw new BatonError('ERR_USAGE', `invalid filter ${JSON.stringify(text)}: ${(err as Error).message} (RE2 syntax: no backreferences or lookaround)`);
  }
}
