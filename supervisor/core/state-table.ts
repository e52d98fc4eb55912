import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';

/** Which states each state may move to; a state missing from its own list is a no-op, not a move. */
export type TransitionTable<S extends string> = { readonly [K in S]: readonly S[] };

/** Under the test runner an illegal move is a bug to fail on; in production it is logged and made anyway. */
const STRICT = process.env.VITEST !== undefined || process.env.NODE_ENV === 'test';

/**
 * Checks `from → to` against `table`: returns true when it is a move to make, false when it is a
 * no-op (same state). An illegal move throws ERR_ILLEGAL_TRANSITION under tests and logs otherwise.
 */
export function checkTransition<S extends string>(machine: string, table: TransitionTable<S>, from: S, to: S, log: Logger): boolean {
  if (from === to) return false;
  if (table[from].includes(to)) return true;
  const error = new BatonError('ERR_ILLEGAL_TRANSITION', `${machine}: ${from} → ${to} is not an allowed transition (from ${from}: ${table[from].join(', ') || 'none'})`);
  if (STRICT) throw error;
  log.error({ err: error, from, to }, 'illegal state transition');
  return true;
}
