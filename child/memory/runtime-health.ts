/**
 * A generation's runtime health, seen from inside: event-loop delay (perf_hooks'
 * monitorEventLoopDelay histogram, reset each interval), event-loop utilization, GC pause time by
 * kind, and — for leak detection on what is live — V8 heap used, external memory and malloc in
 * use read right after each major GC (a PerformanceObserver on 'gc' entries).
 */
import { constants, monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';
import type { RuntimeHealth } from '../../shared/memory-figures.ts';
import { collectGarbage } from './full-gc.ts';

/** Figures read right after the latest major GC; `count` is how many major GCs were seen. */
export interface AfterGc {
  count: number;
  at: number;
  heapUsed: number;
  external: number;
  mallocInUse: number;
}

const NS_PER_MS = 1e6;
/**
 * The delay monitor's sampling timer (ms): its own period is in every value it records, so it is
 * taken off. Each tick wakes an idle generation, about 45 µs of CPU each here: at 10 ms that was
 * 4.5 ms of CPU per second per idle process, at 20 ms it is 2.7 (issue #19), and a 5 s interval
 * still has 250 samples for its p99 (a long block delays the next tick whatever the period).
 */
const RESOLUTION_MS = 20;
/**
 * The loop work (ms) in an interval below which the next interval runs without the delay timer:
 * an idle generation (a standby's successor waiting for traffic, a drained canary, a quiet
 * worker) then costs no wake-ups at all. No delay in such an interval can exceed the loop's whole
 * work in it, so it reports 0; the first busy interval after one reports -1 (not measured) and
 * turns the timer back on.
 */
export const IDLE_WORK_MS = 10;

export class RuntimeWatch {
  private readonly delay: ReturnType<typeof monitorEventLoopDelay>;
  private readonly mallocInUse: () => number;
  private readonly observer: PerformanceObserver;
  private elu: EventLoopUtilization;
  private readonly pauses = { minor: 0, major: 0, incremental: 0, weakcb: 0 };
  /** Undefined until the first major GC. */
  afterGc: AfterGc | undefined;
  /** The delay timer runs in this interval (off after an idle one). */
  private measuring = true;
  /** performance.now() span of the latest measure(): its GC entry is already counted. */
  private measured = { start: -1, end: -1 };

  private readonly idleWorkMs: number;

  /** `mallocInUse` reads the allocator's in-use bytes (-1 when unknown); called once per major GC. `idleWorkMs` @default IDLE_WORK_MS */
  constructor(mallocInUse: () => number, idleWorkMs = IDLE_WORK_MS) {
    this.mallocInUse = mallocInUse;
    this.idleWorkMs = idleWorkMs;
    this.delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.delay.enable();
    this.elu = performance.eventLoopUtilization();
    this.observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.onGc(e as PerformanceEntry & { detail?: { kind?: number } });
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  private onGc(e: PerformanceEntry & { detail?: { kind?: number } }): void {
    const kind = e.detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      this.pauses.major += e.duration;
      if (e.startTime >= this.measured.start && e.startTime <= this.measured.end) return;
      // The observer runs soon after the GC, before much new garbage: the closest JS gets to "live".
      this.record();
    } else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) this.pauses.minor += e.duration;
    else if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) this.pauses.incremental += e.duration;
    else if (kind === constants.NODE_PERFORMANCE_GC_WEAKCB) this.pauses.weakcb += e.duration;
  }

  /**
   * A full GC now, and the live figures read synchronously right after it (no new garbage yet,
   * unlike the observer's reading, which runs a task later): what the leak watch fits.
   */
  measure(): void {
    const start = performance.now();
    collectGarbage();
    this.measured = { start, end: performance.now() };
    this.record();
  }

  private record(): void {
    const usage = process.memoryUsage();
    this.afterGc = {
      count: (this.afterGc?.count ?? 0) + 1,
      at: Date.now(),
      heapUsed: usage.heapUsed,
      external: usage.external,
      mallocInUse: this.mallocInUse(),
    };
  }

  /** The health since the previous call (delay and utilization), cumulative GC pauses and CPU. */
  sample(generation: number): RuntimeHealth {
    const elu = performance.eventLoopUtilization(this.elu);
    this.elu = performance.eventLoopUtilization();
    const count = this.delay.count;
    const idle = elu.active < this.idleWorkMs;
    // Measured, or idle (no delay can be long: 0), or busy while the timer was off (unknown: -1).
    const delay = (read: () => number): number => (this.measuring && count > 0 ? excess(read()) : !this.measuring && idle ? 0 : -1);
    const h: RuntimeHealth = {
      loopDelayP50: delay(() => this.delay.percentile(50)),
      loopDelayP99: delay(() => this.delay.percentile(99)),
      loopDelayMax: delay(() => this.delay.max),
      loopUtilization: elu.utilization,
      gcMinorMs: this.pauses.minor,
      gcMajorMs: this.pauses.major,
      gcIncrementalMs: this.pauses.incremental,
      gcWeakcbMs: this.pauses.weakcb,
      cpuMs: (() => {
        const c = process.cpuUsage();
        return (c.user + c.system) / 1000;
      })(),
      sampledAt: Date.now(),
      generation,
    };
    this.delay.reset();
    if (idle === this.measuring) {
      this.measuring = !idle;
      if (this.measuring) this.delay.enable();
      else this.delay.disable();
    }
    return h;
  }

  /** Whether the delay timer runs now: off after an interval of less than `idleWorkMs` of loop work. */
  get measuringDelay(): boolean {
    return this.measuring;
  }

  stop(): void {
    this.delay.disable();
    this.observer.disconnect();
  }
}

/** A recorded interval (ns) less the timer's own period, in ms: how late the loop was. */
function excess(ns: number): number {
  return Math.max(0, ns / NS_PER_MS - RESOLUTION_MS);
}
