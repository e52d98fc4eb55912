/**
 * One worker process of a generation, from spawn to exit: its states (WORKER_TRANSITIONS), how it
 * becomes ready within the ready timeout (the protocol, NOTIFY_SOCKET, accepting polls, a probe),
 * how it stops (drain, SIGTERM at the drain timeout, SIGKILL at the shutdown timeout), with every
 * timer cleared when it exits. It is the lifecycle generation.ts runs once per slot; what the
 * worker says over its IPC channel is worker-channel.ts, which reaches this state only through
 * the moves a message makes.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';
import type { Outgoing, ReplyBody, SupervisorMessage } from '../../shared/protocol.ts';
import { formatDuration } from '../../shared/units.ts';
import { childTiming, monotonicMs, type ChildTiming } from '../../shared/reload-timing.ts';
import { NotifyReader } from '../systemd/notify-reader.ts';
import type { ChildPort, Os, ProcessExit } from '../os/os.ts';
import { AcceptWatch } from '../readiness/accept-watch.ts';
import { ACCEPT_POLL_MS, pollUntilReady } from '../readiness/start-poll.ts';
import { checkTransition } from './state-table.ts';
import { WorkerChannel } from './worker-channel.ts';
import { WORKER_TRANSITIONS, type WorkerInfo, type WorkerOptions, type WorkerState, type WorkerStateDetail } from './worker-types.ts';
import { describeCount, describeExit, stderrSuffix } from './worker-messages.ts';

export { describeExit };

/**
 * How often NOTIFY_SOCKET is read once the generation is ready: STATUS= keeps changing, and an
 * unread queue would fill and stall a child whose sd_notify() blocks on send (libsystemd's does).
 */
const NOTIFY_POLL_MS = 1000;

export { WORKER_TRANSITIONS, type Readiness, type WorkerInfo, type WorkerOptions, type WorkerState } from './worker-types.ts';

interface WorkerEvents {
  state: [to: WorkerState, from: WorkerState, detail: WorkerStateDetail];
  exit: [exit: ProcessExit];
  /** The active worker no longer accepts on `fd`, which it did accept on, for `lostForMs` (over the accept grace). */
  'stopped-accepting': [fd: number, lostForMs: number];
  /** The drain timeout (SIGTERM follows) or the shutdown timeout (SIGKILL follows) was reached with `connections` open. */
  timeout: [kind: 'drain' | 'shutdown', connections: number | null];
}

/** One process of a generation (its worker in one slot), moving through WORKER_TRANSITIONS. */
export class Worker extends EventEmitter<WorkerEvents> {
  private acceptWatch: AcceptWatch | undefined;
  readonly id: number;
  readonly worker: number;
  /** `generation 3`, or `generation 3 worker 1` when the generation has several. */
  readonly label: string;
  readonly pid: number;
  readonly startedAt: number;
  state: WorkerState = 'starting';
  /** Open connections as last reported by the child; null when it does not report. */
  connections: number | null = null;
  /** True once the child has said hello (it uses the SDK or the preload). */
  sdk = false;
  exitInfo?: ProcessExit;
  /** Set when the shutdown timeout had to kill the generation. */
  killedAtShutdown = false;
  /** Its start's marks on the monotonic clock (shared/reload-timing.ts): around the spawn, at ready, and the child's own. */
  readonly spawning: number;
  readonly spawned: number;
  readyAt: number | undefined;
  childTiming: ChildTiming | undefined;

  private readonly proc: ChildPort;
  private readonly options: WorkerOptions;
  private readonly os: Os;
  private readonly log: Logger;
  private readonly timers = new Set<unknown>();
  private readonly ready: Promise<void>;
  private settleReady!: (err?: Error) => void;
  private readonly channel: WorkerChannel;
  private readonly notify: NotifyReader;

  constructor(options: WorkerOptions, os: Os, log: Logger) {
    super();
    this.options = options;
    this.os = os;
    this.id = options.id;
    this.worker = options.worker ?? 0;
    this.label = (options.workers ?? 1) > 1 ? `generation ${this.id} worker ${this.worker}` : `generation ${this.id}`;
    this.startedAt = os.now();
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (err) => (err ? reject(err) : resolve());
    });
    this.ready.catch(() => {});
    this.spawning = monotonicMs();
    this.proc = os.spawn(options.spawn);
    this.spawned = monotonicMs();
    this.pid = this.proc.pid;
    this.log = log.child({ generation: this.id, ...((options.workers ?? 1) > 1 ? { worker: this.worker } : {}), childPid: this.pid });
    this.channel = new WorkerChannel(this.proc, options, {
      id: this.id,
      worker: this.worker,
      label: this.label,
      startedAt: this.startedAt,
      log: this.log,
      state: () => this.state,
      saidHello: () => (this.sdk = true),
      refuse: (err) => this.settleReady(err),
      saidReady: (timing) => {
        if (this.state === 'starting') this.childTiming = childTiming(timing);
        this.becomeReady('sdk');
      },
      connections: (open) => (this.connections = open),
      after: (ms, fn) => this.after(ms, fn),
      cancel: (timer) => {
        this.os.clearTimeout(timer);
        this.timers.delete(timer);
      },
    });
    this.proc.onMessage((m) => void this.channel.receive(m));
    this.proc.onExit((exit) => this.exited(exit));
    this.notify = new NotifyReader(this.proc, this.log, () => {
      // A program that speaks sd_notify knows when it is ready, so `auto` takes its word too.
      if (options.readiness === 'notify' || options.readiness === 'auto') this.becomeReady('notify');
      else if (this.state === 'starting') this.log.debug({ readiness: options.readiness }, 'READY=1 does not count for this readiness');
    });
    if (options.spawn.notifySocket !== undefined) this.pollNotify();
    this.after(options.readyTimeout, () => {
      if (this.state !== 'starting') return;
      this.settleReady(
        new BatonError(
          'ERR_READY_TIMEOUT',
          `${this.label} (pid ${this.pid}) did not become ready within ${formatDuration(options.readyTimeout)}` +
            stderrSuffix(this.proc.stderrTail()),
        ),
      );
    });
    const waitsForMessage = options.readiness === 'sdk' || options.readiness === 'notify';
    if (!waitsForMessage && !(options.readiness === 'auto' && options.spawn.listenFds.length === 0)) {
      pollUntilReady({
        readiness: options.readiness,
        listenFds: options.spawn.listenFds,
        ...(options.probe ? { probe: options.probe } : {}),
        pid: this.pid,
        after: (ms, fn) => this.after(ms, fn),
        starting: () => this.state === 'starting',
        speaksProtocol: () => this.sdk,
        isAccepting: (fds) => this.proc.isAccepting(fds),
        ready: (via) => this.becomeReady(via),
      });
    }
    // The log side of the worker-starting event the supervisor publishes (event-relay.ts).
    this.log.info({ event: 'worker-starting', command: [options.spawn.command, ...options.spawn.args].join(' ') }, 'generation starting');
  }

  /** Resolves when the generation is ready; rejects with ERR_READY_TIMEOUT or ERR_GENERATION_EXITED. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** ready → active: the generation now serves as the current one. */
  promote(): void {
    if (this.state !== 'ready') return;
    this.transition('active');
    const grace = this.options.acceptGrace;
    if (grace !== undefined && grace > 0 && this.options.spawn.listenFds.length > 0) {
      this.acceptWatch = new AcceptWatch({
        timers: this.os,
        listenFds: this.options.spawn.listenFds,
        isAccepting: (fd) => this.proc.isAccepting([fd]),
        graceMs: grace,
        onStopped: (fd, lostForMs) => this.emit('stopped-accepting', fd, lostForMs),
      });
    }
  }

  /**
   * Stops the generation gracefully: asks it to drain (or sends the drain signal), then at the drain
   * timeout asks it to exit (SIGTERM), then at the shutdown timeout kills it (SIGKILL).
   */
  drain(reason: string): void {
    if (this.state === 'exited' || this.state === 'draining') return;
    this.transition('draining', { reason });
    this.settleReady(new BatonError('ERR_RELOAD_SUPERSEDED', `${this.label} was drained before it was ready (${reason})`));
    const deadline = this.os.now() + this.options.drainTimeout;
    if (!(this.sdk && this.channel.send({ type: 'drain', deadline }))) this.signal(this.options.drainSignal);
    this.after(this.options.drainTimeout, () => {
      this.log.warn({ connections: this.connections }, `drain timeout (${formatDuration(this.options.drainTimeout)}) reached: asking generation to exit`);
      this.emit('timeout', 'drain', this.connections);
      this.signal('SIGTERM');
      this.after(this.options.shutdownTimeout, () => {
        this.killedAtShutdown = true;
        this.log.error(
          { connections: this.connections },
          `shutdown timeout (${formatDuration(this.options.shutdownTimeout)}) reached: killing generation, cutting ${describeCount(this.connections)}`,
        );
        this.emit('timeout', 'shutdown', this.connections);
        this.signal('SIGKILL');
      });
    });
  }

  /** Kills the generation at once (forced stop). */
  kill(): void {
    if (this.state !== 'exited') this.signal('SIGKILL');
  }

  info(): WorkerInfo {
    return {
      generation: this.id,
      worker: this.worker,
      pid: this.pid,
      state: this.state,
      startedAt: this.startedAt,
      uptimeMs: (this.exitInfo ? this.exitedAt : this.os.now()) - this.startedAt,
      connections: this.connections,
      sdk: this.sdk,
      ...(this.notify.status !== undefined ? { status: this.notify.status } : {}),
      ...(this.exitInfo ? { exit: this.exitInfo } : {}),
    };
  }

  /**
   * Sends `body` and resolves with the generation's ack; rejects with ERR_NO_PROTOCOL when the
   * generation does not speak the protocol, ERR_TIMEOUT after `timeoutMs`, ERR_GENERATION_EXITED
   * when it exits first.
   */
  request(body: Outgoing<SupervisorMessage>, timeoutMs: number): Promise<ReplyBody> {
    if (!this.sdk || this.state === 'exited') {
      return Promise.reject(new BatonError('ERR_NO_PROTOCOL', `${this.label} does not speak Baton's protocol (it does not use the SDK)`));
    }
    return this.channel.request(body, timeoutMs);
  }

  /** The last lines the generation wrote to stderr. */
  stderrTail(): string[] {
    return this.proc.stderrTail();
  }

  private exitedAt = 0;

  private becomeReady(via: string): void {
    if (this.state !== 'starting') return;
    this.readyAt = monotonicMs();
    this.transition('ready', { via, readyMs: Math.round(this.os.now() - this.startedAt) });
    this.settleReady();
  }

  private pollNotify(): void {
    this.after(this.state === 'starting' ? ACCEPT_POLL_MS : NOTIFY_POLL_MS, () => {
      this.notify.read();
      this.pollNotify();
    });
  }

  private exited(exit: ProcessExit): void {
    const wasStarting = this.state === 'starting';
    this.exitInfo = exit;
    this.exitedAt = this.os.now();
    for (const t of this.timers) this.os.clearTimeout(t);
    this.timers.clear();
    this.channel.failAll(new BatonError('ERR_GENERATION_EXITED', `${this.label} exited`));
    if (wasStarting) {
      this.settleReady(
        new BatonError(
          'ERR_GENERATION_EXITED',
          `${this.label} (pid ${this.pid}) ${describeExit(exit)} before it was ready` + stderrSuffix(this.proc.stderrTail()),
        ),
      );
    }
    this.transition('exited', { code: exit.code, signal: exit.signal });
    this.emit('exit', exit);
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.state === 'exited') return;
    try {
      this.proc.kill(signal);
    } catch (err) {
      this.log.warn({ err, signal }, 'could not signal generation');
    }
  }

  private after(ms: number, fn: () => void): unknown {
    const handle = this.os.setTimeout(() => {
      this.timers.delete(handle);
      fn();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  private transition(to: WorkerState, fields: WorkerStateDetail = {}): void {
    const from = this.state;
    if (!checkTransition(this.label, WORKER_TRANSITIONS, from, to, this.log)) return;
    this.state = to;
    // Only while active: a draining worker stops accepting on purpose.
    if (from === 'active') this.acceptWatch?.stop();
    const level = to === 'exited' && from !== 'draining' ? 'warn' : 'info';
    // The log side of the worker-state event the supervisor publishes from the 'state' event below.
    this.log[level]({ event: 'worker-state', from, to, ...fields }, `${this.label} ${from} → ${to}`);
    this.emit('state', to, from, fields);
  }
}
