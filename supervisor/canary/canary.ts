import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';
import type { StatSample } from '../../shared/stats/index.ts';
import { announce, type EventSink } from '../core/events.ts';
import { evaluate, type CanaryConfig } from './evaluate.ts';
import { figuresOf, quantile, REQUEST_STATS_FILTER, since, type Figures } from './figures.ts';
import { DrainingBound } from './draining-bound.ts';
import { everyWorker, type CanaryGeneration } from './generation-port.ts';

export type { CanaryGeneration } from './generation-port.ts';
import { BaselineSampler } from './baseline.ts';

/** What the canary needs of the supervisor. */
export interface CanaryDeps {
  os: { now(): number; setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
  log: Logger;
  /** Where the window's opening and end are published. */
  events: EventSink;
  snapshot(filter: RegExp): StatSample[];
  /** Counts a rolled-back reload (`baton.reloads_rolled_back`). */
  rolledBack(): void;
  /** Tells the service manager (sd_notify STATUS=). */
  status(text: string): void;
  /** `generation` serves again as the active one (a rollback). */
  activate(generation: CanaryGeneration): void;
  live(): CanaryGeneration[];
  /** A generation's RSS over its workers (bytes); undefined when unknown. For draining-memory-budget. */
  rss?(generation: CanaryGeneration): number | undefined;
}

/** How one reload's window ended. */
export interface CanaryOutcome {
  generation: number;
  result: 'promoted' | 'rolled-back';
  reason: string;
  /** The generations the window kept parked (and that serve again after a rollback). */
  previous: number[];
}

/** What a promotion is judged with: the reload's config and, when readiness has one, the HTTP probe. */
export interface PromoteOptions {
  canary?: CanaryConfig;
  maxDraining: number;
  /** RSS the draining generations may hold together (bytes); the oldest is hurried beyond it. */
  drainingMemoryBudget?: number;
  shutdownTimeout: number;
  probe?: () => Promise<boolean>;
  /** The generation was launched with Baton's preload (a `node` command, `preload: auto`). */
  preload?: boolean;
  /** Called on a rollback with the generation active again (the supervisor restores its config and release). */
  restore?: (restored: number) => void;
}

interface Window {
  next: CanaryGeneration;
  parked: CanaryGeneration[];
  baseline: Figures;
  start: Figures;
  config: CanaryConfig;
  endsAt: number;
  timer: unknown;
  probe?: () => Promise<boolean>;
  probeFailures: number;
  restore?: (restored: number) => void;
  settle(outcome: CanaryOutcome): void;
}

/** Consecutive failed HTTP probes that count as a failing release. */
const PROBE_FAILURES = 3;
const PARK_TIMEOUT_MS = 2_000;
const UNPARK_TIMEOUT_MS = 5_000;
const OUTCOMES_KEPT = 8;

/**
 * The canary window: after a promotion the previous generation is parked (not accepting, still
 * running, warm) while the new one's request figures are compared with the previous one's; a
 * breach, a crash or a failing probe rolls back (the previous one accepts again, the new one
 * drains), a clean window drains the previous one as a reload without a canary does at once.
 */
export class Canary {
  private readonly deps: CanaryDeps;
  private readonly bound: DrainingBound;
  private readonly sampler: BaselineSampler;
  private window: Window | undefined;
  private readonly outcomes = new Map<number, Promise<CanaryOutcome>>();

  constructor(deps: CanaryDeps) {
    this.deps = deps;
    this.bound = new DrainingBound(deps);
    this.sampler = new BaselineSampler(deps);
  }

  /** `next` was promoted over `previous`: park them for a window, or drain them now (within max-draining). */
  afterPromote(next: CanaryGeneration, previous: CanaryGeneration[], options: PromoteOptions): void {
    this.preload = options.preload === true;
    if (this.window) this.promote(`superseded by generation ${next.id}`);
    const waiting = previous.filter((g) => g.state !== 'draining' && g.state !== 'exited');
    const config = options.canary;
    if (!config || waiting.length === 0) {
      this.bound.retire(waiting, `replaced by generation ${next.id}`, options);
      if (config) this.sampler.watch(next, config.window);
      return;
    }
    const snapshot = this.deps.snapshot(REQUEST_STATS_FILTER);
    const old = waiting[waiting.length - 1]!;
    let settle!: (o: CanaryOutcome) => void;
    this.remember(next.id, new Promise<CanaryOutcome>((resolve) => (settle = resolve)));
    this.window = {
      next,
      parked: waiting,
      baseline: this.sampler.baseline(old, next.startedAt, snapshot),
      start: figuresOf(snapshot, next.id),
      config,
      endsAt: this.deps.os.now() + config.window,
      timer: undefined,
      ...(options.probe ? { probe: options.probe } : {}),
      probeFailures: 0,
      ...(options.restore ? { restore: options.restore } : {}),
      settle,
    };
    this.retireOptions = options;
    for (const g of waiting) this.park(g);
    announce(
      this.deps.events,
      this.deps.log,
      'info',
      { type: 'canary-open', generation: next.id, parked: waiting.map((g) => g.id), windowMs: config.window },
      `canary window open for generation ${next.id}: ${waiting.map((g) => g.id).join(', ')} parked`,
      { baseline: describe(this.window.baseline) },
    );
    this.deps.status(`canary: generation ${next.id} on probation, ${waiting.map((g) => g.id).join(', ')} parked`);
    this.schedule();
  }

  /** A generation exited: the one on probation rolls back; a parked one is no longer a way back. */
  exited(g: CanaryGeneration, how: string): void {
    const w = this.window;
    if (!w) return;
    if (g === w.next) {
      this.rollback(`generation ${g.id} ${how} during its canary window`);
      return;
    }
    w.parked = w.parked.filter((p) => p !== g);
    if (w.parked.length === 0) this.promote(`the parked generation ${g.id} ${how}: nothing to roll back to`);
  }

  /** True while a window is open (a rollback unparks the previous generation). */
  get open(): boolean {
    return this.window !== undefined;
  }

  /** `baton rollback`: the window's generation drains, the parked one serves again. */
  requestRollback(): CanaryOutcome {
    if (!this.window) throw noWindow('roll back');
    return this.rollback('rollback requested');
  }

  /** `baton promote`: ends the window now, as a clean one would. */
  requestPromote(): CanaryOutcome {
    if (!this.window) throw noWindow('promote');
    return this.promote('promote requested');
  }

  /** How generation `id`'s window ended (or will end); undefined when it had none. */
  outcome(id: number): Promise<CanaryOutcome> | undefined {
    return this.outcomes.get(id);
  }

  /** The open window for `baton status`, if any. */
  status(): { canary?: { generation: number; parked: number[]; endsInMs: number; requests: number; errors: number; p99Ms: number | null }; hurried?: number[]; preload?: true } {
    const hurrying = this.bound.hurrying;
    const hurried = { ...(hurrying.length > 0 ? { hurried: hurrying } : {}), ...(this.preload ? { preload: true as const } : {}) };
    const w = this.window;
    if (!w) return hurried;
    const current = this.current(w);
    const p99 = quantile(current, 0.99);
    return {
      ...hurried,
      canary: {
        generation: w.next.id,
        parked: w.parked.map((g) => g.id),
        endsInMs: Math.max(0, Math.round(w.endsAt - this.deps.os.now())),
        requests: current.requests,
        errors: current.errors,
        p99Ms: Number.isNaN(p99) ? null : Math.round(p99 * 10) / 10,
      },
    };
  }

  private preload = false;
  private retireOptions: PromoteOptions = { maxDraining: Infinity, shutdownTimeout: 5_000 };

  private current(w: Window): Figures {
    return since(w.start, figuresOf(this.deps.snapshot(REQUEST_STATS_FILTER), w.next.id));
  }

  private schedule(): void {
    const w = this.window;
    if (!w) return;
    const tick = Math.max(20, Math.min(250, w.config.window / 10));
    w.timer = this.deps.os.setTimeout(() => void this.tick(w), tick);
  }

  private async tick(w: Window): Promise<void> {
    if (this.window !== w) return;
    // Stopped, or drained by someone else: nothing left to judge.
    if (w.next.state !== 'active') return void this.close(w, { result: 'promoted', reason: `generation ${w.next.id} is ${w.next.state}` });
    if (w.probe) {
      const ok = await w.probe().catch(() => false);
      if (this.window !== w) return;
      w.probeFailures = ok ? 0 : w.probeFailures + 1;
      if (w.probeFailures >= PROBE_FAILURES) return void this.rollback(`the readiness probe failed ${PROBE_FAILURES} times in a row`);
    }
    const verdict = evaluate(this.current(w), w.baseline, w.config, this.deps.os.now() >= w.endsAt);
    if (verdict.kind === 'breach') this.rollback(`rolled back: ${verdict.reason}`);
    else if (verdict.kind === 'pass') this.promote(verdict.reason);
    else this.schedule();
  }

  private rollback(reason: string): CanaryOutcome {
    const w = this.window!;
    const restored = w.parked[w.parked.length - 1];
    if (!restored) return this.promote(`${reason}, but no parked generation is left to roll back to`);
    const why = reason.startsWith('rolled back') ? reason : `rolled back: ${reason}`;
    this.deps.activate(restored);
    w.restore?.(restored.id);
    this.sampler.watch(restored, w.config.window);
    this.deps.rolledBack();
    const figures = this.current(w);
    announce(
      this.deps.events,
      this.deps.log,
      'warn',
      { type: 'canary-rollback', generation: w.next.id, restored: restored.id, reason: why },
      `generation ${w.next.id} ${why}; generation ${restored.id} serves again`,
      { requests: figures.requests, errors: figures.errors },
    );
    this.deps.status(`generation ${restored.id} active (pid ${restored.pid}); generation ${w.next.id} ${why}`);
    const outcome = this.close(w, { result: 'rolled-back', reason: why });
    // The old generation accepts again before the new one stops: connections wait in the backlog meanwhile, none refused.
    void Promise.all(w.parked.map((g) => this.unpark(g))).finally(() => w.next.drain(why));
    return outcome;
  }

  private promote(reason: string): CanaryOutcome {
    const w = this.window!;
    const promoted = { type: 'canary-promote', generation: w.next.id, reason, draining: w.parked.map((g) => g.id) } as const;
    announce(this.deps.events, this.deps.log, 'info', promoted, `generation ${w.next.id} promoted: ${reason}`);
    const outcome = this.close(w, { result: 'promoted', reason });
    this.sampler.watch(w.next, w.config.window);
    this.bound.retire(w.parked, `replaced by generation ${w.next.id} (canary: ${reason})`, this.retireOptions);
    return outcome;
  }

  private close(w: Window, end: Pick<CanaryOutcome, 'result' | 'reason'>): CanaryOutcome {
    if (this.window === w) this.window = undefined;
    this.deps.os.clearTimeout(w.timer);
    const outcome = { generation: w.next.id, previous: w.parked.map((g) => g.id), ...end };
    w.settle(outcome);
    return outcome;
  }

  private park(g: CanaryGeneration): void {
    // A program without the SDK cannot stop accepting and resume: it shares the queue during the window.
    if (!g.sdk) return void this.deps.log.warn({ generation: g.id }, `generation ${g.id} does not use the SDK: it keeps accepting during the canary window`);
    void everyWorker(g, { type: 'park' }, PARK_TIMEOUT_MS).then((replies) => {
      const failed = replies.filter((r) => !r.ok);
      if (failed.length === 0) this.deps.log.info({ generation: g.id }, `generation ${g.id} parked`);
      else this.deps.log.warn({ generation: g.id, errors: failed }, `generation ${g.id} could not be parked`);
    });
  }

  private async unpark(g: CanaryGeneration): Promise<void> {
    if (!g.sdk) return;
    const replies = await everyWorker(g, { type: 'unpark' }, UNPARK_TIMEOUT_MS);
    const failed = replies.filter((r) => !r.ok);
    if (failed.length === 0) this.deps.log.info({ generation: g.id }, `generation ${g.id} accepts again`);
    else this.deps.log.error({ generation: g.id, errors: failed }, `generation ${g.id} could not take its sockets back`);
  }

  private remember(id: number, outcome: Promise<CanaryOutcome>): void {
    this.outcomes.set(id, outcome);
    for (const old of [...this.outcomes.keys()].slice(0, Math.max(0, this.outcomes.size - OUTCOMES_KEPT))) this.outcomes.delete(old);
  }
}

function noWindow(what: string): BatonError {
  return new BatonError('ERR_NO_CANARY', `nothing to ${what}: no canary window is open (the previous generation is not parked)`);
}

function describe(f: Figures): Record<string, number | null> {
  const p99 = quantile(f, 0.99);
  return { requests: f.requests, errors: f.errors, p99Ms: Number.isNaN(p99) ? null : Math.round(p99 * 10) / 10 };
}
