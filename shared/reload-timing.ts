/**
 * Where a reload's time goes (issue #19), as marks on one clock: CLOCK_MONOTONIC in ms, which
 * `process.hrtime` and `performance.now()` both read in every process of the machine, so the
 * supervisor's marks, its generation's and a benchmark's own can be set side by side. A mark is
 * a single clock read at a point the code passes anyway: no timer, no message of its own.
 */

/** CLOCK_MONOTONIC now, in ms (µs resolution). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** A generation's own marks, sent with its `ready` message (the SDK fills them in). */
export interface ChildTiming {
  /** The process's time origin (`performance.timeOrigin`): Node has been exec'd. */
  start: number;
  /** Node's bootstrap is complete (`performance.nodeTiming.bootstrapComplete`): the main module starts loading. */
  booted: number;
  /** A standby (booted ahead, `standby: true`) was woken for this generation: the app starts loading. */
  woken?: number;
  /** The first `listen()` through the SDK (or its preload) was called: the app and the SDK have been imported. */
  listenCalled?: number;
  /** The latest `listen()` before ready() has resolved. */
  listening?: number;
  /** `ready()` sent the message (after the hello's reply). */
  readySent: number;
  /** CPU time (ms, user + system) the process had used by then: its start's cost, whatever the machine's load. */
  cpuMs?: number;
}

/** The marks of one generation's start, supervisor side and (with the SDK) child side. */
export interface ReloadTiming {
  /** The reload was asked for (SIGHUP, POST /reload, a generation's request); absent at start and restart. */
  received?: number;
  /** The configuration was re-read and checked. */
  configRead?: number;
  /** Just before the supervisor spawned the process (of the worker that became ready last). */
  spawning: number;
  /** The spawn call returned (the exec shim has been exec'd). */
  spawned: number;
  child?: ChildTiming;
  /** The supervisor has the ready message (or saw the generation accept, without the SDK). */
  readyReceived: number;
  /** The new generation is the active one. */
  promoted: number;
  /** Its predecessors have been told to drain (the messages are written). */
  drainSent: number;
}

const CHILD_KEYS = ['start', 'booted', 'woken', 'listenCalled', 'listening', 'readySent', 'cpuMs'] as const;

/** The child's marks from a ready message, keeping only finite numbers: it is the program's word. */
export function childTiming(raw: unknown): ChildTiming | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const out: Partial<Record<(typeof CHILD_KEYS)[number], number>> = {};
  for (const key of CHILD_KEYS) {
    const v = (raw as Record<string, unknown>)[key];
    if (typeof v === 'number' && Number.isFinite(v)) out[key] = v;
  }
  return out.start !== undefined && out.booted !== undefined && out.readySent !== undefined ? (out as ChildTiming) : undefined;
}
