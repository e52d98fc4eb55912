/**
 * The supervisor's end of one worker's IPC channel: the table of what a generation may ask
 * (hello, ready, listen, a ticket key, a reload...) with the answers, and the requests the
 * supervisor sends it, each settled by its ack, a timeout or the exit. It stands apart from
 * worker.ts because it is the protocol (shared/protocol.ts, docs/protocol.md) as one worker
 * speaks it, which grows message by message; the worker is the process's lifecycle (states,
 * readiness, drain, kill) and meets the channel only in the few moves a message makes (ChannelHost).
 */
import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';
import { Correlator, dispatch, isEnvelope, replyError, unrecognized } from '../../shared/protocol.ts';
import type { ChildMessage, Handlers, Outgoing, ReplyBody, SupervisorMessage } from '../../shared/protocol.ts';
import { SHARED_MAX_IN_FLIGHT, sharedProblem } from '../../shared/shared-value.ts';
import { formatDuration } from '../../shared/units.ts';
import type { ChildPort } from '../os/os.ts';
import type { WorkerOptions, WorkerState } from './worker-types.ts';
import { statsLayoutMismatch } from './worker-messages.ts';

/** What the channel needs of its worker: who it is, its state and timers, and the moves a message makes. */
export interface ChannelHost {
  readonly id: number;
  readonly worker: number;
  readonly label: string;
  readonly startedAt: number;
  readonly log: Logger;
  state(): WorkerState;
  /** The child said hello: it speaks the protocol. */
  saidHello(): void;
  /** Its hello was refused (another stats layout or protocol version): whenReady rejects with `err`. */
  refuse(err: Error): void;
  /** The child said it is ready; `timing` is its own start marks, unchecked. */
  saidReady(timing: unknown): void;
  /** The child reported `open` connections. */
  connections(open: number): void;
  /** A timer the worker clears when it exits. */
  after(ms: number, fn: () => void): unknown;
  /** Clears a timer of `after` that is no longer needed. */
  cancel(timer: unknown): void;
}

/** One worker's protocol: answers what the child asks, sends what the supervisor asks of it. */
export class WorkerChannel {
  private readonly correlator = new Correlator();
  private readonly handlers: Handlers<ChildMessage, void>;
  private readonly proc: ChildPort;
  private readonly host: ChannelHost;
  /** Shares from this worker not yet acknowledged by every worker. */
  private sharing = 0;

  constructor(proc: ChildPort, options: WorkerOptions, host: ChannelHost) {
    this.proc = proc;
    this.host = host;
    this.handlers = {
      hello: (m) => {
        host.saidHello();
        host.log.debug({ runtime: m.runtime }, 'generation said hello');
        const err = statsLayoutMismatch(host.label, m.statsLayout, options.statsLayout);
        if (err) {
          host.refuse(err);
          throw err;
        }
        const shared = options.shared?.();
        return { ok: true, generation: host.id, worker: host.worker, instance: options.instance, startedAt: host.startedAt, ...(shared ? { shared } : {}) };
      },
      ready: (m) => {
        host.saidReady(m.timing);
        return { ok: true };
      },
      connections: (m) => {
        host.connections(m.open);
        return undefined;
      },
      listen: (m) => {
        const listener = options.requestListener(m.address, host.id);
        this.proc.sendFds([listener.fd], listener.name);
        return { ok: true, fds: 1, name: listener.name, address: listener.address };
      },
      drained: () => {
        host.log.info('generation drained its connections');
        return undefined;
      },
      'ticket-key': (m) => (options.ticketKey ? { ok: true, ...options.ticketKey(Number(m.rotateEvery)) } : unrecognized(m.type)),
      reload: async (m) => {
        if (!options.reload) return unrecognized(m.type);
        const state = host.state();
        if (state !== 'active') throw new BatonError('ERR_RELOAD_FAILED', `${host.label} is ${state}: only the active generation may ask for a reload`);
        const reason = String(m.reason).slice(0, 200);
        host.log.info({ reason }, `${host.label} asks for a reload: ${reason}`);
        return { ok: true, generation: await options.reload(reason, host.id) };
      },
      share: async (m) => {
        if (!options.share) return unrecognized(m.type);
        const problem = sharedProblem(m.key, m.value);
        if (problem) throw new BatonError('ERR_BAD_REQUEST', `${host.label}: ${problem}`);
        // Each share is relayed to every worker: a bound on what one worker has on the way keeps a runaway loop from flooding them all.
        if (this.sharing >= SHARED_MAX_IN_FLIGHT) {
          throw new BatonError('ERR_BAD_REQUEST', `${host.label}: ${SHARED_MAX_IN_FLIGHT} of its shared values are on their way already; set the next once one has resolved`);
        }
        this.sharing += 1;
        try {
          return { ok: true, workers: await options.share(m.key, m.value) };
        } finally {
          this.sharing -= 1;
        }
      },
      ack: (m) => {
        this.correlator.settle(m.ack, m);
        return undefined;
      },
    };
  }

  /** Answers one message from the child; what is not a Baton envelope (an app's own message) is ignored. */
  async receive(raw: unknown): Promise<void> {
    if (!isEnvelope(raw)) return;
    const reply = await dispatch(this.handlers, raw, undefined);
    if (reply === undefined) return;
    // The one version check: a generation of another protocol is refused before it can do anything.
    if (raw.type === 'hello' && !reply.ok) this.host.refuse(replyError(reply.error));
    this.proc.send(this.correlator.reply<SupervisorMessage>(raw.seq, reply));
  }

  /** Sends `body` without waiting for an ack; false when the channel is gone. */
  send(body: Outgoing<SupervisorMessage>): boolean {
    return this.proc.send(this.correlator.stamp<SupervisorMessage>(body));
  }

  /** Sends `body` and resolves with the child's ack, or an ERR_GENERATION_EXITED / ERR_TIMEOUT reply. */
  request(body: Outgoing<SupervisorMessage>, timeoutMs: number): Promise<ReplyBody> {
    const message = this.correlator.stamp<SupervisorMessage>(body);
    const reply = this.correlator.expect(message.seq);
    if (!this.proc.send(message)) {
      this.correlator.settle(message.seq, { ok: false, error: { code: 'ERR_GENERATION_EXITED', message: `${this.host.label} closed its channel` } });
      return reply;
    }
    const timer = this.host.after(timeoutMs, () =>
      this.correlator.settle(message.seq, {
        ok: false,
        error: { code: 'ERR_TIMEOUT', message: `${this.host.label} did not answer '${body.type}' within ${formatDuration(timeoutMs)}` },
      }),
    );
    return reply.finally(() => this.host.cancel(timer));
  }

  /** Rejects every request still waiting for its ack: the worker exited. */
  failAll(err: Error): void {
    this.correlator.failAll(err);
  }
}
