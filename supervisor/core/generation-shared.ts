/**
 * A generation's shared values (the SDK's `shared`, docs/protocol.md): what its workers set, kept
 * so that a worker starting later in the generation (a restarted slot, a rolling rollout's) gets
 * them in its hello. A new generation starts with none.
 */
import { BatonError } from '../../shared/errors.ts';
import { SHARED_MAX_KEYS, type SharedValue } from '../../shared/shared-value.ts';

export class GenerationShared {
  private readonly values = new Map<string, SharedValue>();
  private readonly id: number;

  constructor(id: number) {
    this.id = id;
  }

  /** Records `key` (checked by the caller); ERR_BAD_REQUEST when it is new and the generation holds the most it may. */
  set(key: string, value: SharedValue): void {
    if (!this.values.has(key) && this.values.size >= SHARED_MAX_KEYS) {
      throw new BatonError('ERR_BAD_REQUEST', `generation ${this.id} holds ${SHARED_MAX_KEYS} shared values already: no room for '${key}'`);
    }
    this.values.set(key, value);
  }

  /** Every value, for a worker's hello. */
  all(): Record<string, SharedValue> {
    return Object.fromEntries(this.values);
  }
}
