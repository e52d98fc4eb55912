import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';
import { Correlator, dispatch, isEnvelope, type Handlers, type HandOverMessage, type Outgoing, type ReplyBody } from '../../shared/protocol.ts';
import { formatDuration } from '../../shared/units.ts';
import { UPGRADE_ENV, UPGRADE_VERSION, type UpgradeState } from '../sockets/inherited-sockets.ts';
import type { HandOver, Supervisor } from '../core/supervisor.ts';
import { announce } from '../core/events.ts';

export interface UpgradeResult {
  /** Pid of the supervisor now serving. */
  pid: number;
  /** Its first generation, active. */
  generation: number;
}

export interface UpgraderOptions {
  supervisor: Supervisor;
  log: Logger;
  /** The service manager's variables, passed on so the successor notifies the same systemd. */
  serviceEnv: Record<string, string>;
  /** How long the successor may take to have its first generation active. */
  timeoutMs: number;
  /** Stops answering on the control socket (the successor's has replaced it). */
  releaseControl(): void;
  /** Binds the control socket over the path again (a successor that died had renamed its own over it). */
  reclaimControl(): Promise<void>;
  /** True when the control socket's path answers, and from the supervisor with this pid. */
  answersAsPid(pid: number): Promise<boolean>;
}

/**
 * The old supervisor's half of `baton upgrade`: starts the Baton installed now (the same script
 * path and arguments, so a release directory behind a symlink is picked up) as a successor,
 * handing it the listening sockets from fd 3 on. Once the successor's first generation is active
 * it replaces the control socket and lets go of the channel; then this supervisor stops
 * answering and drains its own generations. When the successor fails first, this supervisor
 * keeps serving as if nothing happened.
 */
export class Upgrader {
  private readonly options: UpgraderOptions;
  private pending: Promise<UpgradeResult> | undefined;

  constructor(options: UpgraderOptions) {
    this.options = options;
  }

  /** Resolves once the successor serves; an upgrade asked for while one runs shares its outcome. */
  upgrade(): Promise<UpgradeResult> {
    this.pending ??= this.run().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async run(): Promise<UpgradeResult> {
    const { supervisor, log } = this.options;
    let handOver: HandOver;
    try {
      if (process.pid === 1) {
        throw new BatonError(
          'ERR_UPGRADE_FAILED',
          'cannot upgrade the supervisor running as pid 1 (a container entrypoint): the container ends when it exits; roll out a new image instead',
        );
      }
      handOver = supervisor.beginHandOver();
    } catch (err) {
      // A SIGUSR2 has no one to answer: the log is where its refusal shows.
      log.warn({ err }, `upgrade refused: ${(err as Error).message}`);
      throw err;
    }
    const state: UpgradeState = {
      version: UPGRADE_VERSION,
      from: process.pid,
      nextGeneration: handOver.nextGeneration,
      listeners: handOver.listeners.map((l) => ({ name: l.name, key: l.key, origin: l.origin === 'systemd' ? 'systemd' : 'predecessor' })),
      serviceEnv: this.options.serviceEnv,
    };
    let child: ChildProcess;
    try {
      // The Node running now with its flags, and the script path as given: through a symlink, the release installed now.
      child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
        stdio: ['ignore', 'inherit', 'inherit', ...handOver.listeners.map((l) => l.fd), 'ipc'],
        env: { ...process.env, ...this.options.serviceEnv, [UPGRADE_ENV]: JSON.stringify(state) },
      });
    } catch (err) {
      supervisor.resumeAfterHandOver();
      throw new BatonError('ERR_UPGRADE_FAILED', `cannot start the new supervisor: ${(err as Error).message}`, { cause: err });
    }
    const started = { type: 'upgrade-started', successor: child.pid ?? 0, nextGeneration: state.nextGeneration } as const;
    announce(supervisor.events, log, 'info', started, 'upgrade: new supervisor started', { listeners: state.listeners.length });
    try {
      const ready = await this.successorReady(child);
      log.info({ successor: child.pid, generation: ready.message.generation }, 'upgrade: the new supervisor serves; handing over');
      // After the reply to `baton upgrade` has gone out on the control socket this releases.
      setImmediate(() => this.handOff(child, ready.reply, ready.message.generation));
      return { pid: child.pid as number, generation: ready.message.generation };
    } catch (err) {
      supervisor.resumeAfterHandOver();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      log.error({ err }, 'upgrade failed; this supervisor keeps serving');
      throw err;
    }
  }

  private handOff(child: ChildProcess, reply: (body: ReplyBody) => void, generation: number): void {
    const { supervisor, log } = this.options;
    // The successor lets go of the channel once its control socket has replaced ours, and also by
    // dying: the channel can close before its exit is seen, so ask the control socket who answers.
    const onGone = async (): Promise<void> => {
      const serves = child.exitCode === null && child.signalCode === null && (await this.options.answersAsPid(child.pid as number));
      if (!serves) {
        log.error({ successor: child.pid }, 'the new supervisor exited during the hand-over; this supervisor keeps serving');
        supervisor.resumeAfterHandOver();
        // It may have died between renaming its socket over ours and letting go of the channel.
        if (!(await this.options.answersAsPid(process.pid))) await this.reclaim();
        return;
      }
      this.options.releaseControl();
      child.unref();
      // Until this supervisor has finished draining, a successor that dies is taken over from.
      child.once('exit', (code, signal) => {
        if (!supervisor.takeBack(generation)) return;
        log.error({ successor: child.pid, code, signal }, 'the new supervisor died after the hand-over; this supervisor takes the service back');
        void this.reclaim();
      });
      void supervisor.retire(child.pid as number);
    };
    if (child.connected) child.once('disconnect', () => void onGone());
    else void onGone();
    reply({ ok: true });
  }

  private async reclaim(): Promise<void> {
    try {
      await this.options.reclaimControl();
    } catch (err) {
      this.options.log.error({ err }, 'cannot bind the control socket again; signals still work');
    }
  }

  /** Waits for the successor's `successor-ready`; rejects when it exits, disconnects or times out first. */
  private successorReady(child: ChildProcess): Promise<{ message: Extract<HandOverMessage, { type: 'successor-ready' }>; reply: (body: ReplyBody) => void }> {
    const { timeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      const fail = (message: string): void => {
        cleanup();
        reject(new BatonError('ERR_UPGRADE_FAILED', `the new supervisor (pid ${child.pid}) ${message}; its log lines say why`));
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
        fail(`exited (${signal ?? `code ${code}`}) before its first generation was active`);
      const onError = (err: Error): void => fail(`could not be started: ${err.message}`);
      const timer = setTimeout(() => fail(`had no generation active within ${formatDuration(timeoutMs)}`), timeoutMs);
      const handlers: Handlers<HandOverMessage, void> = {
        'successor-ready': (message) => {
          cleanup();
          resolve({
            message,
            reply: (body) => ack(child, message, body),
          });
          return undefined;
        },
        ack: () => undefined,
      };
      const onMessage = (message: unknown): void => {
        if (!isEnvelope(message)) return;
        void dispatch(handlers, message, undefined).then((body) => {
          if (body) ack(child, message, body);
        });
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.off('exit', onExit);
        child.off('error', onError);
        child.off('message', onMessage);
      };
      child.on('exit', onExit);
      child.on('error', onError);
      child.on('message', onMessage);
    });
  }
}

/**
 * Answers `message` from the successor, if its channel is still open. A successor that died with
 * its message unread here closes the channel under the send: the callback takes that error (an
 * unheard 'error' event would end this supervisor), and its exit is handled where it is awaited.
 */
function ack(child: ChildProcess, message: { seq: number; baton: number }, body: ReplyBody): void {
  if (child.connected) child.send({ ...body, type: 'ack', ack: message.seq, baton: message.baton, seq: 0 }, () => {});
}

/**
 * The successor's half: tells the predecessor its first generation is active, waits for its go
 * (or its disappearance), runs `takeOver` (replace the control socket), then lets go of the
 * channel, which tells the predecessor to stop answering and drain.
 */
export async function announceSuccessor(generation: number, log: Logger, takeOver: () => Promise<void>): Promise<void> {
  if (!process.send || !process.connected) return;
  const correlator = new Correlator();
  const message = correlator.stamp<HandOverMessage>({ type: 'successor-ready', pid: process.pid, generation } as Outgoing<HandOverMessage>);
  const reply = correlator.expect(message.seq);
  const onMessage = (m: unknown): void => {
    if (isEnvelope(m) && m.type === 'ack') correlator.settle((m as unknown as { ack: number }).ack, m as unknown as ReplyBody);
  };
  const onDisconnect = (): void => correlator.failAll(new BatonError('ERR_NOT_SUPERVISED', 'the previous supervisor went away'));
  process.on('message', onMessage);
  process.once('disconnect', onDisconnect);
  process.send(message);
  try {
    const body = await reply;
    if (!body.ok) log.warn({ error: body.error }, 'the previous supervisor answered the hand-over with an error; taking over anyway');
  } catch {
    log.warn('the previous supervisor went away before handing over; taking over');
  }
  try {
    await takeOver();
  } finally {
    process.off('message', onMessage);
    process.off('disconnect', onDisconnect);
    if (process.connected) process.disconnect();
  }
}
