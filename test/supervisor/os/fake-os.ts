/**
 * A fake operating system for the supervisor's state machines: a manual clock, sockets that are
 * only numbers, and child processes the test speaks for. Nothing here touches the real OS.
 */
import pino from 'pino';
import { formatAddress, parseAddress, type Address } from '../../../shared/address.ts';
import { PROTOCOL_VERSION, type SupervisorMessage } from '../../../shared/protocol.ts';
import type { ChildPort, Notification, Os, ProcessExit, SpawnSpec } from '../../../supervisor/os/os.ts';

/** A logger that writes nothing. */
export const silentLog = pino({ level: 'silent' });

/** Lets every pending promise continuation run (a macrotask turn, not a timed wait). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Watches a promise so a test can ask whether it has settled yet. */
export function observe<T>(promise: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const seen: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  promise.then(
    (value) => Object.assign(seen, { state: 'resolved', value }),
    (error: unknown) => Object.assign(seen, { state: 'rejected', error }),
  );
  return seen;
}

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** What a child was given, in order: messages on the IPC channel and descriptors on SCM_RIGHTS. */
export type Outbound = { kind: 'message'; message: SupervisorMessage } | { kind: 'fds'; fds: number[]; payload: string };

export class FakeChild implements ChildPort {
  readonly pid: number;
  readonly spec: SpawnSpec;
  readonly outbox: Outbound[] = [];
  readonly signals: NodeJS.Signals[] = [];
  /** What stderrTail() returns. */
  stderr: string[] = [];
  /** What isAccepting() returns; `acceptingAsked` records the descriptors it was asked about. */
  accepting = false;
  acceptingAsked: number[][] = [];
  /** Datagrams on the NOTIFY_SOCKET not yet read; `notifyReads` counts readNotifications() calls. */
  readonly notifications: Notification[] = [];
  notifyReads = 0;
  connected = true;
  exited = false;
  private seq = 0;
  private readonly messageListeners: ((message: unknown) => void)[] = [];
  private readonly exitListeners: ((exit: ProcessExit) => void)[] = [];

  constructor(pid: number, spec: SpawnSpec) {
    this.pid = pid;
    this.spec = spec;
  }

  send(message: SupervisorMessage): boolean {
    if (!this.connected) return false;
    this.outbox.push({ kind: 'message', message });
    return true;
  }

  sendFds(fds: number[], payload: string): void {
    this.outbox.push({ kind: 'fds', fds, payload });
  }

  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
  }

  onMessage(listener: (message: unknown) => void): void {
    this.messageListeners.push(listener);
  }

  onExit(listener: (exit: ProcessExit) => void): void {
    this.exitListeners.push(listener);
  }

  stderrTail(): string[] {
    return this.stderr;
  }

  isAccepting(listenFds: number[]): boolean {
    this.acceptingAsked.push(listenFds);
    return this.accepting;
  }

  readNotifications(): Notification[] {
    this.notifyReads += 1;
    return this.notifications.splice(0);
  }

  /** Queues an sd_notify datagram, from the child itself unless another sender pid is given. */
  notify(payload: string, pid = this.pid): void {
    this.notifications.push({ payload, pid });
  }

  /** Messages the supervisor sent (not descriptors). */
  get sent(): SupervisorMessage[] {
    return this.outbox.flatMap((o) => (o.kind === 'message' ? [o.message] : []));
  }

  /** The reply to the child's message `seq`. */
  ackFor(seq: number): (SupervisorMessage & Record<string, unknown>) | undefined {
    return this.sent.find((m) => m.type === 'ack' && m.ack === seq) as (SupervisorMessage & Record<string, unknown>) | undefined;
  }

  /** Delivers anything as if the child had sent it with process.send. */
  pushRaw(message: unknown): void {
    for (const l of this.messageListeners) l(message);
  }

  /** Sends a protocol message from the child; returns its seq. */
  push(body: { type: string } & Record<string, unknown>): number {
    const seq = ++this.seq;
    this.pushRaw({ baton: PROTOCOL_VERSION, seq, ...body });
    return seq;
  }

  /** hello then ready, as the SDK does, and lets the supervisor react. */
  async sayReady(): Promise<void> {
    this.push({ type: 'hello', pid: this.pid, runtime: 'node test' });
    this.push({ type: 'ready' });
    await flush();
  }

  /** The process exits (its IPC channel closes first). */
  exit(code: number | null = 0, signal: NodeJS.Signals | null = null): void {
    this.connected = false;
    this.exited = true;
    for (const l of this.exitListeners) l({ code, signal });
  }
}

export interface ListenCall {
  address: Address;
  bound: Address;
  backlog: number;
  mode?: number;
  fd: number;
  reusePort?: boolean;
}

export class FakeOs implements Os {
  time = 1_000_000;
  readonly children: FakeChild[] = [];
  readonly listens: ListenCall[] = [];
  readonly closed: number[] = [];
  /** Canonical addresses whose bind fails with EADDRINUSE. */
  readonly busy = new Set<string>();
  /** What httpProbe() answers. */
  probeResult = true;
  /** What tcpProbe() answers; `tcpProbes` records the address and pid of each call. */
  tcpProbeResult = false;
  readonly tcpProbes: { address: Address; pid: number }[] = [];
  private timers: Timer[] = [];
  private nextTimer = 1;
  private nextFd = 100;
  private nextPort = 40_000;
  private nextPid = 5000;

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: this.nextTimer++, at: this.time + ms, fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Timers still to fire. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /**
   * Moves the clock forward by `ms`, firing due timers in order of due time (then creation),
   * including timers they set that fall due within the step; promise continuations run after each.
   */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
      await flush();
    }
    this.time = until;
    await flush();
  }

  listen(address: Address, backlog: number, mode?: number, reusePort?: boolean): { fd: number; bound: Address } {
    if (this.busy.has(formatAddress(address))) {
      throw Object.assign(new Error(`listen EADDRINUSE: address already in use ${formatAddress(address)}`), { code: 'EADDRINUSE' });
    }
    const bound: Address = address.kind === 'tcp' && address.port === 0 ? { ...address, port: this.nextPort++ } : address;
    const call: ListenCall = { address, bound, backlog, fd: this.nextFd++, ...(mode !== undefined ? { mode } : {}), ...(reusePort ? { reusePort } : {}) };
    this.listens.push(call);
    return { fd: call.fd, bound };
  }

  close(fd: number): void {
    this.closed.push(fd);
  }

  /** Descriptors bound and not closed. */
  get open(): number[] {
    return this.listens.map((l) => l.fd).filter((fd) => !this.closed.includes(fd));
  }

  /** The descriptor bound for `address` (as written in a config). */
  fdOf(address: string): number {
    const key = formatAddress(parseAddress(address));
    const call = this.listens.find((l) => formatAddress(l.address) === key);
    if (!call) throw new Error(`nothing was bound at ${address}`);
    return call.fd;
  }

  spawn(spec: SpawnSpec): FakeChild {
    const child = new FakeChild(this.nextPid++, spec);
    this.children.push(child);
    return child;
  }

  httpProbe(): Promise<boolean> {
    return Promise.resolve(this.probeResult);
  }

  tcpProbe(address: Address, pid: number): Promise<boolean> {
    this.tcpProbes.push({ address, pid });
    return Promise.resolve(this.tcpProbeResult);
  }

  /** The most recently spawned child. */
  get child(): FakeChild {
    const last = this.children[this.children.length - 1];
    if (!last) throw new Error('nothing was spawned');
    return last;
  }
}
