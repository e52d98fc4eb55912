/**
 * Which worker of a generation probes the upstreams for all of them: the lowest-index worker
 * heard from lately. Worker 0 leads from its start. Any other takes over once no lower worker has
 * published for (3 + its index) beats — worker 0 in its restart backoff, wedged or stopped — so
 * the lowest one alive takes over first and its beats keep the others following; and it steps
 * down as soon as a lower worker is heard again (a restarted worker 0 leads from its first round).
 */

export type LeadState = 'leading' | 'following';
export type LeadEvent = 'heard-lower' | 'silence';

/** Every allowed transition; an event a state does not list is ignored. */
export const LEAD_TRANSITIONS: Readonly<Record<LeadState, Readonly<Partial<Record<LeadEvent, LeadState>>>>> = {
  following: { 'heard-lower': 'following', silence: 'leading' },
  leading: { 'heard-lower': 'following' },
};

/** The timers the lead needs (a seam for unit tests). */
export interface LeadClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: LeadClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Beats of silence from every lower worker after which worker 1 leads (worker i waits i more). */
export const SILENT_BEATS = 3;

export class HealthLead {
  private current: LeadState;
  private watchdog: unknown;
  private stopped = false;
  private readonly worker: number;
  private readonly onChange: (state: LeadState) => void;
  private readonly clock: LeadClock;
  /** Silence (ms) after which this worker leads. */
  readonly staleAfter: number;

  /** `onChange` runs on every change of state, never for the initial one. */
  constructor(worker: number, beatMs: number, onChange: (state: LeadState) => void, clock: LeadClock = realClock) {
    this.worker = worker;
    this.onChange = onChange;
    this.clock = clock;
    this.staleAfter = (SILENT_BEATS + worker) * beatMs;
    this.current = worker === 0 ? 'leading' : 'following';
    this.arm();
  }

  get state(): LeadState {
    return this.current;
  }

  /** A beat published by worker `from` (this worker's own echoes included: they are ignored). */
  heard(from: number): void {
    if (from < this.worker) this.fire('heard-lower');
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private fire(event: LeadEvent): void {
    if (this.stopped) return;
    const next = LEAD_TRANSITIONS[this.current][event];
    if (next === undefined) return;
    const changed = next !== this.current;
    this.current = next;
    this.arm();
    if (changed) this.onChange(next);
  }

  /** A follower waits for silence again from now; a leader has nothing to wait for. */
  private arm(): void {
    this.disarm();
    if (this.current === 'following') this.watchdog = this.clock.setTimeout(() => this.fire('silence'), this.staleAfter);
  }

  private disarm(): void {
    if (this.watchdog !== undefined) this.clock.clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }
}
