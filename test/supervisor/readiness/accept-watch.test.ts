import { describe, expect, it } from 'vitest';
import { AcceptWatch } from '../../../supervisor/readiness/accept-watch.ts';
import type { Timers } from '../../../supervisor/os/os.ts';

/** Timers whose clock moves only when the test says so. */
function manualTimers(): Timers & { advance(ms: number): void } {
  let now = 0;
  const pending: { at: number; fn: () => void; id: number }[] = [];
  let next = 1;
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = next++;
      pending.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout: (id) => {
      const i = pending.findIndex((p) => p.id === id);
      if (i >= 0) pending.splice(i, 1);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        pending.sort((a, b) => a.at - b.at);
        const first = pending[0];
        if (!first || first.at > end) break;
        pending.shift();
        now = first.at;
        first.fn();
      }
      now = end;
    },
  };
}

describe('AcceptWatch', () => {
  it('reports a listener it saw accepted on and then unpolled for the whole grace, once', () => {
    const timers = manualTimers();
    const accepting = new Map([[3, true], [4, true]]);
    const stopped: [number, number][] = [];
    new AcceptWatch({ timers, listenFds: [3, 4], isAccepting: (fd) => accepting.get(fd) ?? false, graceMs: 1000, onStopped: (fd, ms) => stopped.push([fd, ms]) });
    timers.advance(2000);
    expect(stopped).toEqual([]);
    accepting.set(4, false);
    timers.advance(900);
    expect(stopped).toEqual([]);
    timers.advance(600);
    expect(stopped).toHaveLength(1);
    expect(stopped[0]![0]).toBe(4);
    expect(stopped[0]![1]).toBeGreaterThanOrEqual(1000);
    timers.advance(5000);
    expect(stopped).toHaveLength(1);
  });

  it('forgives a listener polled again within the grace', () => {
    const timers = manualTimers();
    let accepting = true;
    const stopped: number[] = [];
    new AcceptWatch({ timers, listenFds: [3], isAccepting: () => accepting, graceMs: 1000, onStopped: (fd) => stopped.push(fd) });
    for (let i = 0; i < 10; i++) {
      accepting = false;
      timers.advance(700);
      accepting = true;
      timers.advance(300);
    }
    expect(stopped).toEqual([]);
  });

  it('never judges a listener it never saw accepted on, nor after stop()', () => {
    const timers = manualTimers();
    const stopped: number[] = [];
    new AcceptWatch({ timers, listenFds: [3], isAccepting: () => false, graceMs: 100, onStopped: (fd) => stopped.push(fd) });
    timers.advance(10_000);
    let accepting = true;
    const watch = new AcceptWatch({ timers, listenFds: [3], isAccepting: () => accepting, graceMs: 100, onStopped: (fd) => stopped.push(fd) });
    watch.stop();
    accepting = false;
    timers.advance(10_000);
    expect(stopped).toEqual([]);
  });
});
