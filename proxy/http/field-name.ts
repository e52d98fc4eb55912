/**
 * Case-insensitive tests of header field names without a lower-cased copy: the hot paths compared
 * `name.toLowerCase()` with a constant, a new string for every capitalised name (`Content-Length`
 * was lower-cased three times per answer), ~8 per proxied request.
 */

/**
 * Whether the field name `name` (a token, RFC 9110 §5.6.2, as llhttp hands them) is `lower` (lower
 * case: letters, digits, `-`) but for case. OR-ing 0x20 folds A-Z onto a-z and leaves `-` and digits
 * as they are; the only other characters it maps onto them are control characters, never in a token.
 */
export function isFieldName(name: string, lower: string): boolean {
  const n = lower.length;
  if (name.length !== n) return false;
  for (let i = 0; i < n; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}
