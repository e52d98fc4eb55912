import type { Timers } from '../os/os.ts';

/** How often the active generation's accepting is read from /proc, at most. */
const WATCH_MS = 1000;

export interface AcceptWatchOptions {
  timers: Timers;
  /** The generation's listening descriptors. */
  listenFds: number[];
  /** True when the generation polls this descriptor for connections (epoll). */
  isAccepting(fd: number): boolean;
  /** How long a listener the generation accepted on may go unpolled. */
  graceMs: number;
  /** Called once, for the first listener that stayed unpolled for the whole grace. */
  onStopped(fd: number, lostForMs: number): void;
}

/**
 * Watches the active generation for a listener it accepted on and then stopped accepting on
 * (closed the server, a wedged accept loop that unregistered it): every connection would wait in
 * the queue for nobody while the generation still looks healthy. A listener it was never seen
 * accepting on is not judged: a program that blocks in accept() or select() cannot be observed.
 */
export class AcceptWatch {
  private readonly options: AcceptWatchOptions;
  private readonly seen = new Set<number>();
  private readonly lostSince = new Map<number, number>();
  private timer: unknown;
  private stopped = false;

  constructor(options: AcceptWatchOptions) {
    this.options = options;
    // A first look at once: a generation just promoted accepts now, and may stop before the next look.
    this.look();
  }

  /** Ends the watch (the generation drains or has exited: it stops accepting on purpose). */
  stop(): void {
    this.stopped = true;
    this.options.timers.clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    // A few looks within the grace, so one missed look is not the whole verdict.
    const every = Math.max(50, Math.min(WATCH_MS, Math.floor(this.options.graceMs / 4)));
    this.timer = this.options.timers.setTimeout(() => this.look(), every);
  }

  private look(): void {
    if (this.stopped) return;
    const now = this.options.timers.now();
    for (const fd of this.options.listenFds) {
      if (this.options.isAccepting(fd)) {
        this.seen.add(fd);
        this.lostSince.delete(fd);
        continue;
      }
      if (!this.seen.has(fd)) continue;
      const since = this.lostSince.get(fd) ?? now;
      this.lostSince.set(fd, since);
      if (now - since >= this.options.graceMs) {
        this.stop();
        this.options.onStopped(fd, now - since);
        return;
      }
    }
    this.schedule();
  }
}
