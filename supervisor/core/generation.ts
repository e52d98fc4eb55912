import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';
import type { Outgoing, ReplyBody, SupervisorMessage } from '../../shared/protocol.ts';
import type { SharedValue } from '../../shared/shared-value.ts';
import { formatDuration } from '../../shared/units.ts';
import type { Os, ProcessExit } from '../os/os.ts';
import type { ReloadTiming } from '../../shared/reload-timing.ts';
import { Backoff } from './backoff.ts';
import { GenerationShared } from './generation-shared.ts';
import { checkTransition } from './state-table.ts';
import type { GenerationEvents, GenerationInfo, GenerationOptions } from './generation-types.ts';
import { describeExit, Worker, WORKER_TRANSITIONS, type WorkerState } from './worker.ts';

export { describeExit };
export type { Readiness } from './worker.ts';
export type { GenerationEvents, GenerationInfo, GenerationOptions } from './generation-types.ts';

/** A generation's state: that of its workers taken together (ready once every one is). */
export type GenerationState = WorkerState;

/** A generation moves as a worker does. */
export const GENERATION_TRANSITIONS = WORKER_TRANSITIONS;

/** How long a worker may take to acknowledge a shared value before the sharer is answered without it. */
const SHARE_TIMEOUT_MS = 5000;

/**
 * One generation of the served program: `workers` processes of the same command, one per slot.
 * It is ready when every worker is; any worker failing fails the generation. While it serves, a
 * worker that dies is restarted alone in its slot.
 */
export class Generation extends EventEmitter<GenerationEvents> {
  readonly id: number;
  readonly startedAt: number;
  readonly size: number;
  state: GenerationState = 'starting';
  exitInfo?: ProcessExit;

  private readonly options: GenerationOptions;
  private readonly os: Os;
  private readonly log: Logger;
  /** The current worker of each slot (a restarted slot's replaces its predecessor here). */
  private readonly slots: Worker[] = [];
  private readonly restarts = new Map<number, unknown>();
  /** Slots handed over to the next generation in a rolling rollout: their exit is no crash. */
  private readonly retired = new Set<number>();
  /** Slots started for the generation's own readiness (not restarts) that are ready. */
  private readonly readySlots = new Set<number>();
  private readonly slotBackoff: Backoff[];
  private readonly crashes: Backoff;
  private readonly ready: Promise<void>;
  private settleReady!: (err?: Error) => void;
  private lastExited: Worker | undefined;
  private exitedAt = 0;
  private readonly shared: GenerationShared;

  constructor(options: GenerationOptions, os: Os, log: Logger) {
    super();
    this.options = options;
    this.os = os;
    this.log = log;
    this.id = options.id;
    this.size = Math.max(1, options.workers ?? 1);
    this.startedAt = os.now();
    this.shared = new GenerationShared(options.id);
    this.crashes = new Backoff(options.restart, os);
    this.slotBackoff = Array.from({ length: this.size }, () => new Backoff({ ...options.restart, maxFailures: Number.POSITIVE_INFINITY }, os));
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (err) => (err ? reject(err) : resolve());
    });
    this.ready.catch(() => {});
    for (let slot = 0; slot < Math.min(this.size, options.initial ?? this.size); slot++) this.startSlot(slot);
  }

  /** Starts slot `slot`'s first worker; the generation is ready once every slot's is. Resolves when this one is ready. */
  startSlot(slot: number): Promise<void> {
    const worker = this.spawn(slot);
    const ready = worker.whenReady();
    ready.then(
      () => {
        this.readySlots.add(slot);
        if (this.state === 'starting' && this.readySlots.size === this.size) this.transition('ready');
      },
      (err: Error) => this.settleReady(err),
    );
    return ready;
  }

  /** Drains slot `slot`'s worker for good (a rolling rollout moved the slot on); resolves once it has exited. */
  retireSlot(slot: number, reason: string): Promise<void> {
    const worker = this.slots[slot];
    this.retired.add(slot);
    this.os.clearTimeout(this.restarts.get(slot));
    this.restarts.delete(slot);
    if (!worker || worker.state === 'exited') return Promise.resolve();
    return new Promise((resolve) => {
      worker.once('exit', () => resolve());
      worker.drain(reason);
    });
  }

  /** Starts a retired slot again (rolling back a rollout); resolves when its worker is ready and serves. */
  async restoreSlot(slot: number): Promise<void> {
    this.retired.delete(slot);
    const worker = this.spawn(slot);
    await worker.whenReady();
    if (this.state === 'active') worker.promote();
  }

  /** The first slot's pid (the only one with one worker). */
  get pid(): number {
    return (this.slots[0] as Worker).pid;
  }

  /** Every worker's pid, slot by slot. */
  get pids(): number[] {
    return this.slots.map((w) => w.pid);
  }

  get workers(): readonly Worker[] {
    return this.slots;
  }

  /** Open connections summed over the workers; null when none reports. */
  get connections(): number | null {
    const reported = this.slots.filter((w) => w.state !== 'exited' && w.connections !== null);
    return reported.length === 0 ? null : reported.reduce((n, w) => n + (w.connections ?? 0), 0);
  }

  /** True when every worker speaks the protocol. */
  get sdk(): boolean {
    return this.slots.every((w) => w.sdk);
  }

  /** Set when the shutdown timeout had to kill a worker. */
  get killedAtShutdown(): boolean {
    return this.slots.some((w) => w.killedAtShutdown);
  }

  /** The start's marks of the worker that became ready last (the one the generation waited for); undefined before. */
  startTiming(): Pick<ReloadTiming, 'spawning' | 'spawned' | 'child' | 'readyReceived'> | undefined {
    let last: Worker | undefined;
    for (const w of this.slots) if (w.readyAt !== undefined && (last === undefined || w.readyAt > (last.readyAt as number))) last = w;
    if (last?.readyAt === undefined) return undefined;
    return { spawning: last.spawning, spawned: last.spawned, ...(last.childTiming ? { child: last.childTiming } : {}), readyReceived: last.readyAt };
  }

  /** Resolves when every worker is ready; rejects with the first worker's failure. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** ready → active: every worker serves as the current generation. */
  promote(): void {
    if (this.state !== 'ready') return;
    for (const w of this.slots) w.promote();
    this.transition('active');
  }

  /** Drains every worker (drain message or signal, then SIGTERM, then SIGKILL, each on its own timers). */
  drain(reason: string): void {
    if (this.state === 'exited' || this.state === 'draining') return;
    for (const t of this.restarts.values()) this.os.clearTimeout(t);
    this.restarts.clear();
    this.transition('draining', { reason });
    this.settleReady(new BatonError('ERR_RELOAD_SUPERSEDED', `generation ${this.id} was drained before it was ready (${reason})`));
    for (const w of this.slots) w.drain(reason);
    this.exitIfDone();
  }

  /** Kills every worker at once (forced stop). */
  kill(): void {
    for (const t of this.restarts.values()) this.os.clearTimeout(t);
    this.restarts.clear();
    for (const w of this.slots) w.kill();
  }

  info(): GenerationInfo {
    const { worker: _worker, ...first } = (this.slots[0] as Worker).info();
    return {
      ...first,
      state: this.state,
      startedAt: this.startedAt,
      uptimeMs: (this.exitInfo ? this.exitedAt : this.os.now()) - this.startedAt,
      connections: this.connections,
      sdk: this.sdk,
      ...(this.exitInfo ? { exit: this.exitInfo } : {}),
      ...(this.size > 1 ? { workers: this.slots.map((w) => w.info()) } : {}),
    };
  }

  /** Sends `body` to one worker (slot 0 by default) and resolves with its ack (see Worker.request). */
  request(body: Outgoing<SupervisorMessage>, timeoutMs: number, slot = 0): Promise<ReplyBody> {
    const worker = this.slots[slot];
    if (!worker) return Promise.reject(new BatonError('ERR_USAGE', `generation ${this.id} has no worker ${slot} (workers: ${this.size})`));
    return worker.request(body, timeoutMs);
  }

  /**
   * Sets `key` for every worker that speaks the protocol (one starting later gets it in its hello);
   * resolves with how many acknowledged. Each worker's channel delivers in order, so when two set
   * the same key at once every worker ends with the one the supervisor received last.
   */
  async share(key: string, value: SharedValue): Promise<number> {
    this.shared.set(key, value);
    const told = this.slots.filter((w) => w.sdk && w.state !== 'exited').map((w) => w.request({ type: 'share', key, value }, SHARE_TIMEOUT_MS));
    const replies = await Promise.allSettled(told);
    return replies.filter((r) => r.status === 'fulfilled' && r.value.ok).length;
  }

  /** The last lines on stderr of the worker that exited last, else of the first. */
  stderrTail(): string[] {
    return (this.lastExited ?? (this.slots[0] as Worker)).stderrTail();
  }

  private spawn(slot: number): Worker {
    const options = { ...this.options.worker(slot), share: (key: string, value: SharedValue) => this.share(key, value), shared: () => this.shared.all() };
    const worker = new Worker(options, this.os, this.log);
    this.slots[slot] = worker;
    worker.on('state', (to, from, detail) => this.emit('worker-state', worker, to, from, detail));
    worker.on('timeout', (kind, connections) => this.emit('worker-timeout', worker, kind, connections));
    worker.on('exit', (exit) => this.workerExited(worker, exit));
    worker.on('stopped-accepting', (fd, lostForMs) => {
      // One of several: drained out, and its exit restarts the slot. A lone worker is the generation: the supervisor replaces it.
      if (this.size > 1) worker.drain(`it stopped accepting for ${lostForMs} ms`);
      else this.emit('stopped-accepting', fd, lostForMs);
    });
    this.emit('worker-start', worker);
    return worker;
  }

  private workerExited(worker: Worker, exit: ProcessExit): void {
    this.lastExited = worker;
    this.emit('worker-exit', worker, exit);
    if (this.slots[worker.worker] !== worker) return;
    if (this.retired.has(worker.worker)) return this.exitIfDone(exit);
    const serving = this.state === 'active' || this.state === 'ready';
    if (serving && this.size > 1) return this.restartSlot(worker, exit);
    // A lone worker is the generation: its exit is the generation's (the supervisor restarts a new one).
    if (serving) for (const w of this.slots) w.drain(`${worker.label} ${describeExit(exit)}`);
    this.exitIfDone(exit);
  }

  private restartSlot(worker: Worker, exit: ProcessExit): void {
    const slot = worker.worker;
    const why = `${worker.label} (pid ${worker.pid}) ${describeExit(exit)}`;
    if (this.crashes.failure() === null) {
      const { maxFailures, window } = this.options.restart;
      const error = new BatonError('ERR_CRASH_LOOP', `${why}; ${maxFailures} worker failures of generation ${this.id} within ${formatDuration(window)}: giving up`);
      this.log.fatal({ err: error, stderr: worker.stderrTail() }, 'crash loop: giving up');
      this.emit('crash-loop', error);
      return;
    }
    const delay = this.slotBackoff[slot]?.failure() ?? 0;
    this.log.error({ generation: this.id, worker: slot, stderr: worker.stderrTail(), restartInMs: delay }, `${why}; restarting its slot in ${formatDuration(delay)}`);
    this.restarts.set(
      slot,
      this.os.setTimeout(() => {
        this.restarts.delete(slot);
        if (this.state !== 'active' && this.state !== 'ready') return;
        const next = this.spawn(slot);
        next.whenReady().then(
          () => {
            if (this.state === 'active') next.promote();
            if (this.state === 'active' || this.state === 'ready') this.emit('worker-restarted', next);
          },
          () => {},
        );
      }, delay),
    );
  }

  private exitIfDone(exit?: ProcessExit): void {
    if (this.state === 'exited' || this.restarts.size > 0 || this.slots.some((w) => w.state !== 'exited')) return;
    this.exitInfo = exit ?? (this.lastExited?.exitInfo as ProcessExit) ?? { code: null, signal: null };
    this.exitedAt = this.os.now();
    this.transition('exited', { code: this.exitInfo.code, signal: this.exitInfo.signal });
    this.emit('exit', this.exitInfo);
  }

  private transition(to: GenerationState, fields: Record<string, unknown> = {}): void {
    const from = this.state;
    if (!checkTransition(`generation ${this.id}`, GENERATION_TRANSITIONS, from, to, this.log)) return;
    this.state = to;
    if (this.size > 1) {
      const level = to === 'exited' && from !== 'draining' ? 'warn' : 'info';
      this.log[level]({ generation: this.id, workers: this.size, from, to, ...fields }, `generation ${this.id} (${this.size} workers) ${from} → ${to}`);
    }
    if (to === 'ready') this.settleReady();
    this.emit('state', to, from);
  }
}
