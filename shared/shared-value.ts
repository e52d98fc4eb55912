/**
 * Values the workers of one generation hold alike (the SDK's `shared`): what may be a key and a
 * value, checked by the SDK before it sends one and by the supervisor on receipt, since a child
 * is untrusted input to the supervisor.
 */

/** A shared value: JSON's scalars, so every worker reads the same thing back. */
export type SharedValue = string | number | boolean | null;

/** Keys a generation may hold; a further new key is refused. */
export const SHARED_MAX_KEYS = 64;
/** The longest key. */
export const SHARED_MAX_KEY_LENGTH = 128;
/** The longest string value (UTF-16 units). */
export const SHARED_MAX_STRING = 4096;

/** Shares one worker may have on their way (set, not yet held by every worker); a further one is refused. */
export const SHARED_MAX_IN_FLIGHT = 32;

const KEY = /^[A-Za-z0-9_.:-]+$/;

/** What is wrong with `key` = `value` as a shared value, or undefined when nothing is. */
export function sharedProblem(key: unknown, value: unknown): string | undefined {
  if (typeof key !== 'string' || key.length === 0 || key.length > SHARED_MAX_KEY_LENGTH || !KEY.test(key)) {
    return `a shared key is 1–${SHARED_MAX_KEY_LENGTH} letters, digits and '_ . : -', not ${describe(key)}`;
  }
  if (value === null || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `shared value '${key}' must be a finite number, not ${value}`;
  if (typeof value === 'string') {
    return value.length <= SHARED_MAX_STRING ? undefined : `shared value '${key}' is ${value.length} characters long: at most ${SHARED_MAX_STRING}`;
  }
  return `shared value '${key}' must be a string, number, boolean or null, not ${describe(value)}`;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === undefined || value === null) return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
