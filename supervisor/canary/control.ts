import { BatonError } from '../../shared/errors.ts';
import type { Canary, CanaryOutcome } from './canary.ts';

/** What the control API needs of the canary. */
export type CanaryControl = Pick<Canary, 'requestRollback' | 'requestPromote' | 'outcome'>;

/** The reply to POST /rollback or /promote: 200 with the outcome, 409 when no window is open. */
export function canaryAction(canary: CanaryControl | undefined, action: 'rollback' | 'promote'): { status: number; body: unknown } {
  try {
    if (!canary) throw new BatonError('ERR_NO_CANARY', 'this supervisor has no canary');
    const outcome = action === 'rollback' ? canary.requestRollback() : canary.requestPromote();
    return { status: 200, body: { ok: true, ...outcome } };
  } catch (err) {
    const e = err as BatonError;
    return { status: 409, body: { ok: false, error: { code: e.code ?? 'ERR_CONTROL', message: e.message } } };
  }
}

/**
 * `POST /reload?wait-canary=1`: after the reload, waits for generation `id`'s window; a rollback
 * becomes ERR_ROLLED_BACK with the window's reason (`rolled back: 5xx 12.4% > 1% over 832 requests`).
 */
export async function waitCanary(canary: CanaryControl | undefined, id: number): Promise<{ canary?: CanaryOutcome }> {
  const pending = canary?.outcome(id);
  if (!pending) return {};
  const outcome = await pending;
  if (outcome.result === 'rolled-back') {
    throw new BatonError('ERR_ROLLED_BACK', `${outcome.reason} (generation ${outcome.previous.join(', ')} serves again)`);
  }
  return { canary: outcome };
}
