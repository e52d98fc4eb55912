import { BatonError, type ErrorCode } from '../../shared/errors.ts';
import { ENV, readInheritedListeners, type InheritedListener } from '../../shared/launch-env.ts';
import {
  Correlator,
  dispatch,
  isEnvelope,
  replyError,
  type ChildMessage,
  type Handlers,
  type Outgoing,
  type ReplyBody,
  type SupervisorMessage,
} from '../../shared/protocol.ts';
import { sharedProblem, type SharedValue } from '../../shared/shared-value.ts';
import { LAYOUT_VERSION } from '../../shared/stats/layout.ts';
import type { Stats } from '../../shared/stats/index.ts';
import { segments } from '../stats/stats-module.ts';
import { matchInherited } from './inherited.ts';
import { privateStats } from './standalone.ts';
import { startTiming } from '../start/start-timing.ts';
import type { GenerationInfo, ListenerRequest, ListenPlace, Runtime, RuntimeHooks, TicketKey } from './runtime.ts';

/** Connection counts are reported at most this often. */
const REPORT_INTERVAL_MS = 100;

/** The runtime of a generation launched by Baton: speaks the protocol over Node's IPC channel. */
export class SupervisedRuntime implements Runtime {
  private readonly listeners: InheritedListener[];
  private readonly correlator = new Correlator();
  private readonly handlers: Handlers<SupervisorMessage, void>;
  private readonly hello: Promise<ReplyBody>;
  private generationInfo: GenerationInfo;
  private hooks: RuntimeHooks | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private lastReported = -1;
  private open = 0;
  private mapped: Stats | undefined;
  /** Requests whose reply has not come yet. */
  private awaiting = 0;
  private helloSeq = 0;

  constructor() {
    this.listeners = readInheritedListeners(process.env, process.pid);
    this.generationInfo = {
      supervised: true,
      generation: Number(process.env[ENV.generation] ?? 0),
      worker: Number(process.env[ENV.worker] ?? 0),
      instance: process.env[ENV.instance] ?? '',
      startedAt: Date.now(),
    };
    this.handlers = {
      drain: (m) => {
        this.hooks?.drain(m.deadline);
        return { ok: true };
      },
      park: () => ({ ok: true, listeners: this.hooks?.park?.() ?? 0 }),
      unpark: async () => ({ ok: true, listeners: (await this.hooks?.unpark?.((address) => this.acquire(address))) ?? 0 }),
      hurry: () => ({ ok: true, cut: this.hooks?.hurry?.() ?? 0 }),
      // The memory tools (v8, vm, the inspector) are loaded when first asked for: most generations never are.
      'release-memory': async () => ({ ok: true, ...(await (await memoryActions()).releaseMemory()) }),
      'heap-snapshot': async (m) => {
        const actions = await memoryActions();
        const generation = this.generationInfo.generation;
        return { ok: true, ...(m.onDrain ? await actions.writeHeapSnapshotOnDrain(m.dir, generation) : actions.writeHeapSnapshot(m.dir, generation)) };
      },
      'heap-profile': async (m) => ({ ok: true, ...(await (await memoryActions()).writeHeapProfile(m.dir, this.generationInfo.generation, m.seconds)) }),
      'cpu-profile': async (m) => ({ ok: true, ...(await (await memoryActions()).writeCpuProfile(m.dir, this.generationInfo.generation, m.seconds)) }),
      share: (m) => {
        this.hooks?.shared?.(m.key, m.value);
        return { ok: true };
      },
      ack: (m) => {
        // The hello's values are held as its ack is read, before any later message: a `share` in
        // the same read must not be overtaken by an older value of the same key.
        if (m.ack === this.helloSeq && m.ok) this.holdShared(m.shared);
        this.correlator.settle(m.ack, m as ReplyBody);
        return undefined;
      },
    };
    process.on('message', (m: unknown) => void this.receive(m));
    process.on('disconnect', () => this.correlator.failAll(new BatonError('ERR_SUPERVISOR_GONE', 'the supervisor closed the channel')));
    // The channel must not keep a finished program alive; Baton's messages still arrive while it runs.
    process.channel?.unref();
    const hello = this.correlator.stamp<ChildMessage>({ type: 'hello', pid: process.pid, runtime: `node ${process.version}`, statsLayout: LAYOUT_VERSION });
    this.helloSeq = hello.seq;
    this.hello = this.awaitReply(hello);
    this.hello
      .then((reply) => {
        if (reply.ok) this.generationInfo = { ...this.generationInfo, startedAt: Number(reply.startedAt) };
      })
      .catch(() => {});
    const interval = Number(process.env[ENV.memoryInterval] ?? 0);
    if (interval > 0) {
      // The first sample comes one interval in, as every later one does: the reporter (the stats
      // segment, forty gauges, the event-loop monitor — about 25 ms of CPU) is no part of a
      // generation's start. A failure to map the segment must not stop the program.
      setTimeout(() => {
        void import('../memory/memory-reporter.ts')
          .then(({ MemoryReporter }) => new MemoryReporter(this.stats(), this.generationInfo.generation, interval))
          .catch(() => {
            // no memory figures from this generation; the supervisor still reads /proc
          });
      }, interval).unref();
    }
  }

  info(): GenerationInfo {
    return this.generationInfo;
  }

  async resolve(request: ListenerRequest): Promise<ListenPlace> {
    const inherited = matchInherited(this.listeners, request);
    if (inherited) return { fd: inherited.fd };
    if (request.address === undefined) {
      const names = this.listeners.map((l) => l.name).join(', ') || 'none';
      throw new BatonError('ERR_LISTENER', `no inherited listener named '${request.name}' (inherited: ${names})`);
    }
    return { fd: await this.acquire(request.address) };
  }

  /** A descriptor for `address` from the supervisor (SCM_RIGHTS), even where one was inherited: unpark needs a fresh one. */
  private async acquire(address: string): Promise<number> {
    const request = { address };
    const replied = this.request({ type: 'listen', address: request.address });
    // The addon (its module, the package root, dlopen: ~3 ms) loads while the supervisor binds and
    // sends, not after: this is on every generation's path to listening.
    const native = import('../../shared/native/native.ts');
    native.catch(() => undefined); // its failure is reported below, if the reply gets that far
    const reply = await replied;
    // The supervisor's code and errno (EADDRINUSE, EACCES…) come through, so a program can tell them apart.
    if (!reply.ok) throw new BatonError('ERR_LISTENER', reply.error.message, { cause: replyError(reply.error) });
    const { recvFds } = await native;
    const received = recvFds(Number(process.env[ENV.fdChannel]));
    const fd = received.fds[0];
    if (fd === undefined) throw new BatonError('ERR_PROTOCOL', `the supervisor announced a descriptor for ${request.address} but none came`);
    return fd;
  }

  async ticketKey(rotateEvery: number): Promise<TicketKey> {
    const reply = await this.request({ type: 'ticket-key', rotateEvery });
    if (!reply.ok) throw new BatonError(reply.error.code as ErrorCode, reply.error.message);
    const key = Buffer.from(String(reply.key), 'base64');
    if (key.length !== 48) throw new BatonError('ERR_PROTOCOL', `the supervisor sent a ticket key of ${key.length} bytes, not 48`);
    return { key, expiresAt: Number(reply.expiresAt) };
  }

  async requestReload(reason: string): Promise<number> {
    const reply = await this.request({ type: 'reload', reason });
    if (!reply.ok) throw new BatonError(reply.error.code as ErrorCode, reply.error.message);
    return Number(reply.generation);
  }

  async share(key: string, value: SharedValue): Promise<void> {
    const reply = await this.request({ type: 'share', key, value });
    if (reply.ok) return;
    // A supervisor from before shared values answers "unrecognized": this process is the only holder.
    if (reply.error.code === 'ERR_PROTOCOL') return this.hooks?.shared?.(key, value);
    throw replyError(reply.error);
  }

  stats(): Stats {
    this.mapped ??= this.openStats();
    return this.mapped;
  }

  private openStats(): Stats {
    const dir = process.env[ENV.statsDir];
    // A supervisor without a segment (none configured): this process keeps its stats to itself.
    if (dir === undefined) return privateStats();
    const writer = process.env[ENV.statsWriter];
    return segments().openSegment({ instance: this.generationInfo.instance, dir, ...(writer ? { writer: Number(writer) } : {}) });
  }

  ready(): void {
    void this.hello.then(() => this.notify({ type: 'ready', timing: startTiming() })).catch(() => {});
  }

  reportConnections(open: number): void {
    this.open = open;
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      if (this.open === this.lastReported) return;
      this.lastReported = this.open;
      this.notify({ type: 'connections', open: this.open });
    }, REPORT_INTERVAL_MS).unref();
  }

  drained(): void {
    this.notify({ type: 'connections', open: 0 });
    this.notify({ type: 'drained' });
  }

  start(hooks: RuntimeHooks): void {
    this.hooks = hooks;
    // Baton sends SIGTERM only once the drain deadline has passed: cut what is left and go.
    process.on('SIGTERM', () => hooks.terminate());
  }

  private async receive(raw: unknown): Promise<void> {
    if (!isEnvelope(raw)) return;
    const reply = await dispatch(this.handlers, raw, undefined);
    if (reply !== undefined) this.send(this.correlator.reply<ChildMessage>(raw.seq, reply));
  }

  /** What the generation's workers shared before this one started (a restarted slot), from the hello's ack. */
  private holdShared(values: unknown): void {
    if (typeof values !== 'object' || values === null) return;
    for (const [key, value] of Object.entries(values)) if (sharedProblem(key, value) === undefined) this.hooks?.shared?.(key, value as SharedValue);
  }

  private request(body: Outgoing<ChildMessage>): Promise<ReplyBody> {
    return this.awaitReply(this.correlator.stamp<ChildMessage>(body));
  }

  private awaitReply(message: ChildMessage): Promise<ReplyBody> {
    const reply = this.correlator.expect(message.seq);
    // Awaiting a reply is work in progress: keep the process alive until every reply has come
    // (ref/unref do not count: the hello's reply must not unref under a listen still waiting).
    this.awaiting += 1;
    process.channel?.ref();
    this.send(message);
    return reply.finally(() => {
      this.awaiting -= 1;
      if (this.awaiting === 0) process.channel?.unref();
    });
  }

  private notify(body: Outgoing<ChildMessage>): void {
    this.send(this.correlator.stamp<ChildMessage>(body));
  }

  private send(message: ChildMessage): void {
    if (!process.connected || !process.send) return;
    // A failed write means the supervisor is gone; the parent-death signal ends this process.
    process.send(message, undefined, {}, () => {});
  }
}

function memoryActions(): Promise<typeof import('../memory/memory-actions.ts')> {
  return import('../memory/memory-actions.ts');
}
