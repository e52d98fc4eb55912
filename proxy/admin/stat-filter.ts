/**
 * The admin listener's `?filter=`: a glob on stat names (`*` any run, `?` one character, matched
 * against the whole name), not a regular expression. A JavaScript RegExp backtracks: a filter
 * such as `(.*){1,7}X` held the event loop for ~100 s. This matcher is O(pattern × name) with no
 * backtracking beyond the last `*`, and the pattern's length is bounded.
 */

/** Longest filter accepted. */
export const MAX_FILTER_LENGTH = 256;

const ALLOWED = /^[A-Za-z0-9_.:\-*?]*$/;

/** A predicate on stat names, or the reason the filter text is refused (a 400). */
export function parseStatFilter(text: string): { match: (name: string) => boolean } | { error: string } {
  if (text.length > MAX_FILTER_LENGTH) return { error: `filter is ${text.length} characters long; at most ${MAX_FILTER_LENGTH} are accepted` };
  if (!ALLOWED.test(text)) {
    return { error: "filter is a glob on stat names: letters, digits, '_', '.', ':', '-' and the wildcards * (any run) and ? (one character); regular expressions are not accepted" };
  }
  // Runs of `*` match what one does; collapsing them keeps the pattern short.
  const pattern = text.replace(/\*+/g, '*');
  return { match: (name) => globMatch(pattern, name) };
}

/** True when `pattern` (`*`, `?`, literals) matches all of `name`. */
export function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    const c = pattern.charCodeAt(p);
    if (p < pattern.length && (c === 63 /* ? */ || c === name.charCodeAt(n))) {
      p += 1;
      n += 1;
    } else if (p < pattern.length && c === 42 /* * */) {
      star = p;
      p += 1;
      resume = n;
    } else if (star !== -1) {
      // Only the last `*` is ever re-extended: what came before it already matched.
      p = star + 1;
      resume += 1;
      n = resume;
    } else return false;
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 42) p += 1;
  return p === pattern.length;
}
