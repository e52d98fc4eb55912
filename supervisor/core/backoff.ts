import type { Timers } from '../os/os.ts';

export interface BackoffPolicy {
  /** Failures within `window` that make the supervisor give up. */
  maxFailures: number;
  window: number;
  backoffInitial: number;
  backoffMax: number;
}

/** Exponential restart delays over a sliding window of failures. */
export class Backoff {
  private readonly policy: BackoffPolicy;
  private readonly clock: Pick<Timers, 'now'>;
  private failures: number[] = [];

  constructor(policy: BackoffPolicy, clock: Pick<Timers, 'now'>) {
    this.policy = policy;
    this.clock = clock;
  }

  /** Records a failure; returns the delay before the next attempt, or null to give up. */
  failure(): number | null {
    const now = this.clock.now();
    this.failures = this.failures.filter((t) => now - t < this.policy.window);
    this.failures.push(now);
    if (this.failures.length >= this.policy.maxFailures) return null;
    return Math.min(this.policy.backoffInitial * 2 ** (this.failures.length - 1), this.policy.backoffMax);
  }
}
