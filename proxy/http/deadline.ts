/**
 * One connection's timeout as a deadline number, in place of `socket.setTimeout()` for each phase
 * of each request (headers, stream idle, keep-alive downstream; headers, body, pool idle upstream).
 *
 * Node's socket timeout makes a new Timeout (and a bound function) at every setTimeout() and moves
 * it to the end of its timer list at every read and write: five of those a request, a few percent
 * of the proxy's CPU on small answers. Here a phase change or an activity is a store of
 * `now + ms`; the one timer a connection has is armed again only when the new deadline comes before
 * the time it is set to fire (about once per timeout period under steady traffic: a later deadline
 * is picked up when the timer fires and finds it has not passed yet).
 *
 * Precision: the callback runs once the deadline has passed on the monotonic clock (never early —
 * a timer that libuv fires ahead of it, its loop clock lagging, is armed again for the rest), and
 * as late as a Node timer can be (the event loop's own lateness); there is no coarser granularity.
 */
import { performance } from 'node:perf_hooks';

export class Deadline {
  /** performance.now() at which the deadline passes; Infinity: none. */
  private at = Infinity;
  /** When the armed timer fires; Infinity: no timer armed. */
  private firesAt = Infinity;
  private timer: NodeJS.Timeout | undefined = undefined;
  private readonly onExpire: () => void;
  private readonly check = (): void => this.fired();

  /** `onExpire` runs when a deadline set passes without being set again or cleared. */
  constructor(onExpire: () => void) {
    this.onExpire = onExpire;
  }

  /** The deadline is `ms` from now (replacing any earlier or later one); 0 or less: none. */
  set(ms: number): void {
    this.setFrom(ms > 0 ? performance.now() : 0, ms);
  }

  /**
   * set(), from `now`: a performance.now() the caller took at the start of what the deadline
   * follows (the read, the request), shared by the phases that start there — each reading costs
   * ~45 ns, and the upstream side took five a request.
   */
  setFrom(now: number, ms: number): void {
    if (ms <= 0) return this.off();
    const at = now + ms;
    this.at = at;
    // Armed for what is left by a reading of its own (rare: see the file's comment), `now` being a while back maybe.
    if (at < this.firesAt) this.arm(at, at - performance.now());
  }

  private off(): void {
    // The armed timer, if any, fires and finds nothing to do: cheaper than a clearTimeout each time.
    this.at = Infinity;
  }

  /** No deadline, and no timer kept (the connection is gone or no longer ours). */
  clear(): void {
    this.at = Infinity;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.firesAt = Infinity;
    }
  }

  private arm(at: number, ms: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.firesAt = at;
    // Unref'd, as a socket's own timeout is: a deadline alone does not keep the process alive.
    this.timer = setTimeout(this.check, Math.ceil(ms)).unref();
  }

  private fired(): void {
    this.timer = undefined;
    this.firesAt = Infinity;
    const at = this.at;
    if (at === Infinity) return;
    const left = at - performance.now();
    if (left > 0) return this.arm(at, left);
    this.at = Infinity;
    this.onExpire();
  }
}
