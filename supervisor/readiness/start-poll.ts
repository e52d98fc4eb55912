import type { Readiness } from '../core/worker-types.ts';

/** How often a starting worker that does not speak the protocol is checked for accepting. */
export const ACCEPT_POLL_MS = 20;

export interface StartPollOptions {
  readiness: Readiness;
  listenFds: number[];
  /** The readiness `http:` probe on top of accepting, or the whole `tcp` check; true once ready. */
  probe?: (pid: number) => Promise<boolean>;
  pid: number;
  /** A timer the worker clears when it exits. */
  after(ms: number, fn: () => void): unknown;
  starting(): boolean;
  /** The worker has said hello (an SDK child says when it is ready itself). */
  speaksProtocol(): boolean;
  isAccepting(fds: number[]): boolean;
  ready(via: 'accepting' | 'accepting+http' | 'tcp'): void;
}

/**
 * Readiness without a message: a starting worker counts as ready once it is seen accepting on
 * its sockets (epoll entries in /proc) twice in a row, then passes the probe if one is set; or
 * (`tcp`) once the probe's connection is held by it. Polls until ready or no longer starting.
 */
export function pollUntilReady(o: StartPollOptions): void {
  let streak = 0;
  const probe = (via: 'accepting+http' | 'tcp'): void => {
    void o.probe?.(o.pid).then(
      (ok) => (ok ? o.ready(via) : poll()),
      () => poll(),
    );
  };
  const poll = (): void => {
    o.after(ACCEPT_POLL_MS, () => {
      if (!o.starting()) return;
      if (o.readiness === 'tcp') return probe('tcp');
      const counts = o.readiness === 'accepting' || !o.speaksProtocol();
      streak = counts && o.isAccepting(o.listenFds) ? streak + 1 : 0;
      // Two polls in a row, so a hello already written by an SDK child is read in between.
      if (streak < 2) return poll();
      if (!o.probe) return o.ready('accepting');
      probe('accepting+http');
    });
  };
  poll();
}
