/**
 * The generation's start-up marks for the reload's breakdown (shared/reload-timing.ts): two
 * clock reads in listen(), and Node's own milestones read once, when ready() sends its message.
 */
import { performance } from 'node:perf_hooks';
import { monotonicMs, type ChildTiming } from '../../shared/reload-timing.ts';

/** performance.now() values; performance.now() counts from timeOrigin on the monotonic clock. */
let listenCalled: number | undefined;
let listening: number | undefined;

/** A listen() was called (the first one counts: the app has been imported by then). */
export function markListenCalled(): void {
  listenCalled ??= performance.now();
}

/** A listen() resolved (the latest one counts). */
export function markListening(): void {
  listening = performance.now();
}

/** Every mark so far on the monotonic clock, `readySent` being now, and the CPU used so far. */
export function startTiming(): ChildTiming {
  const now = performance.now();
  const origin = monotonicMs() - now;
  const cpu = process.cpuUsage();
  // Symbol.for('baton.standby.woken') of child/standby.ts, not imported: most generations have no standby.
  const woken = (globalThis as Record<symbol, unknown>)[Symbol.for('baton.standby.woken')];
  return {
    start: origin,
    booted: origin + performance.nodeTiming.bootstrapComplete,
    ...(typeof woken === 'number' ? { woken: origin + woken } : {}),
    ...(listenCalled !== undefined ? { listenCalled: origin + listenCalled } : {}),
    ...(listening !== undefined ? { listening: origin + listening } : {}),
    readySent: origin + now,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}
