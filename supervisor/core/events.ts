/**
 * The supervisor's typed events: what happened to its generations, reloads, stats and memory, as
 * data. The dev runner, the control API's `GET /events` (and so `baton events` and the tests)
 * subscribe to them; log lines say the same for people and may be reworded freely.
 */
import { EventEmitter } from 'node:events';
import type { Level, Logger } from 'pino';
import type { WorkerState } from './worker-types.ts';

/** Every event the supervisor publishes, keyed by `type`. */
export type BatonEvent =
  | { type: 'listening'; listener: string; address: string; fd: number }
  | { type: 'worker-starting'; generation: number; worker: number; pid: number }
  | { type: 'worker-state'; generation: number; worker: number; pid: number; from: WorkerState; to: WorkerState }
  | { type: 'generation-state'; generation: number; from: WorkerState; to: WorkerState }
  | { type: 'generation-active'; generation: number; pid: number; readyMs: number; why: 'start' | 'reload' | 'restart'; draining: number[] }
  | { type: 'warming'; generation: number; beside: number[]; warmupMs: number }
  | { type: 'worker-restarted'; generation: number; worker: number; pid: number }
  | { type: 'reload-failed'; code: string; message: string }
  | { type: 'restarting'; generation: number; restartInMs: number; message: string }
  | { type: 'crash-loop'; generation: number; message: string }
  | { type: 'stopped-accepting'; generation: number; listener: string; lostForMs: number }
  | { type: 'drain-timeout' | 'shutdown-timeout'; generation: number; worker: number; pid: number; connections: number | null }
  | { type: 'stopping'; reason: string }
  | { type: 'stop-forced'; live: number }
  | { type: 'stopped'; handedOver: boolean }
  | { type: 'taken-back' }
  | { type: 'upgraded'; predecessor: number }
  | { type: 'stats'; state: StatsEventState; message: string }
  | { type: 'memory-growing'; generation: number; figure?: string; slopeMiBPerMin: number; message: string }
  | { type: 'memory-limit'; generation: number; limit: 'soft' | 'hard'; why: string }
  | { type: 'memory-replaced'; generation: number; replacement: number }
  | { type: 'memory-released'; generation: number; released: number }
  | { type: 'drain-hurried'; generation: number; cut: number | null; why: string }
  | { type: 'rolled-back'; generation: number; release: number; replaced: number | null }
  | { type: 'canary-open'; generation: number; parked: number[]; windowMs: number }
  | { type: 'canary-rollback'; generation: number; restored: number; reason: string }
  | { type: 'canary-promote'; generation: number; reason: string; draining: number[] }
  | { type: 'control-refused'; uid: number; gid: number; peerPid: number };

/** What happened to the stats segment. */
export type StatsEventState = 'ready' | 'reinitialised' | 'reset' | 'damaged' | 'shrunk' | 'restarted';

export type BatonEventType = BatonEvent['type'];

/** An event as published: numbered in order (from 1) and timed (ms since the epoch). */
export type PublishedEvent = BatonEvent & { seq: number; time: number };

/** Where events go; the supervisor's parts publish through this and know nothing of subscribers. */
export interface EventSink {
  /** Numbers, records and hands `event` to every subscriber. */
  publish(event: BatonEvent): void;
}

/** An EventSink that keeps nothing: for parts used without a supervisor. */
export const NoEvents: EventSink = { publish() {} };

/** Events kept for a subscriber that connects late (GET /events?after=N). */
const KEPT = 1_000;

/**
 * The supervisor's event bus: the last KEPT events for late subscribers, then each new one as
 * an `event` event. Subscribers run synchronously: they must not throw or block.
 */
export class EventBus extends EventEmitter<{ event: [PublishedEvent] }> implements EventSink {
  private readonly kept: PublishedEvent[] = [];
  private seq = 0;
  private readonly now: () => number;

  /** @param now the clock events are timed by. @default Date.now */
  constructor(now: () => number = Date.now) {
    super();
    this.now = now;
  }

  publish(event: BatonEvent): void {
    const published = { ...event, seq: ++this.seq, time: this.now() } as PublishedEvent;
    this.kept.push(published);
    if (this.kept.length > KEPT) this.kept.shift();
    this.emit('event', published);
  }

  /** The kept events numbered above `seq`, oldest first. */
  after(seq: number): PublishedEvent[] {
    return this.kept.filter((e) => e.seq > seq);
  }

  /** The number of the last event published (0 before the first). */
  get last(): number {
    return this.seq;
  }
}

/**
 * Logs `msg` at `level` with the event's fields (its type as `event`) and publishes the event:
 * one call, so what people read and what programs receive cannot disagree.
 */
export function announce(events: EventSink, log: Logger, level: Level, event: BatonEvent, msg: string, extra: Record<string, unknown> = {}): void {
  // A log record's `pid` is the supervisor's own (pino's base): an event's process is its `childPid` there.
  const { type, ...fields } = event as BatonEvent & { pid?: number };
  const { pid, ...rest } = fields;
  log[level]({ event: type, ...rest, ...(pid !== undefined ? { childPid: pid } : {}), ...extra }, msg);
  events.publish(event);
}
