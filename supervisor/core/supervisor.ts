import { formatAddress } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { formatDuration } from '../../shared/units.ts';
import { monotonicMs } from '../../shared/reload-timing.ts';
import type { Config } from '../config/config.ts';
import { Backoff } from './backoff.ts';
import { describeExit, type Generation } from './generation.ts';
import { checkReloadConfig } from './reload-config.ts';
import type { SupervisorMode } from './supervisor-mode.ts';
import { SupervisorPromotion } from './supervisor-promotion.ts';
import type { HandOver, ReloadResult, RollbackResult, StatusSnapshot, SupervisorDeps } from './supervisor-types.ts';

export type { HandOver, ReloadResult, RollbackResult, StatusSnapshot, SupervisorDeps, SupervisorEvents } from './supervisor-types.ts';

/**
 * Runs generations of one program: launches them, hands them the held sockets, promotes a ready
 * one and drains its predecessors, rolls back a failed reload and restarts a crashed generation.
 * Call `start()` once, then `reload()` any number of times, and `stop()` to finish.
 */
export class Supervisor extends SupervisorPromotion {
  /** The reload under way (mode `reloading`), whose outcome a second request shares. */
  private reloading: Promise<ReloadResult> | undefined;
  /** Settles when every generation has exited after stop() (mode `stopping` or `retiring`). */
  private stopped: Promise<void> | undefined;
  /** The mode an upgrade began in, to return to should it fail. */
  private upgradeFrom: SupervisorMode = 'serving';
  private restartTimer: unknown;
  private readonly backoff: Backoff;

  constructor(config: Config, deps: SupervisorDeps) {
    super(config, deps);
    this.backoff = new Backoff(config.restart, deps.os);
  }

  /** The generations and listeners, and the open canary window (if any). */
  override status(): StatusSnapshot {
    return { ...super.status(), ...this.canary.status() };
  }

  /** Binds the configured listeners (throws ERR_LISTENER) and launches the first generation. */
  start(): void {
    this.mode.to('starting');
    this.store.adopt(this.deps.inherited ?? []);
    const listeners = this.store.provide(this.config.listeners);
    // Every slot's socket, so the per-worker sockets a predecessor handed over are kept, not closed as unclaimed.
    this.store.pin([...new Set(this.store.slots(listeners, this.config.listeners, this.config.workers ?? 1).flat())]);
    for (const l of listeners) {
      this.announce('info', { type: 'listening', listener: l.name, address: formatAddress(l.bound), fd: l.fd }, 'listening', l.origin ? { from: l.origin } : {});
    }
    this.sm.storeFds(listeners.filter((l) => l.origin !== 'systemd'));
    void this.launchAndPromote(this.config, 'start').catch(() => {});
    this.memory?.start();
  }

  /**
   * Starts a new generation with the configuration re-read from disk; resolves once it is active
   * and its predecessors are draining. Rejects with ERR_RELOAD_FAILED (the serving generation is
   * untouched). A reload asked for while one is starting shares that one's outcome.
   */
  reload(options: { cold?: boolean; sameConfig?: boolean; rollbackTo?: Config } = {}): Promise<ReloadResult> {
    const refused = this.mode.ending
      ? new BatonError('ERR_SHUTTING_DOWN', `cannot reload: the supervisor is ${this.mode.is('retiring') ? 'handing over to its successor (reload that one)' : 'stopping'}`)
      : this.mode.is('upgrading')
        ? new BatonError('ERR_UPGRADING', 'cannot reload: the supervisor is being upgraded (reload again once `baton upgrade` has settled)')
        : undefined;
    if (refused) {
      // A SIGHUP has no one to answer: the log is where its refusal shows.
      this.log.warn({ err: refused }, `reload refused: ${refused.message}`);
      return Promise.reject(refused);
    }
    if (!this.reloading) {
      const received = monotonicMs();
      const from = this.mode.to('reloading');
      this.sm.reloading();
      this.reloading = this.doReload(options.cold === true, options.sameConfig === true, received, options.rollbackTo).finally(() => {
        this.reloading = undefined;
        if (this.mode.is('reloading')) this.mode.settle(from, this.active !== undefined);
        // READY ends the reload for systemd whatever came of it: a failed one leaves the old generation serving.
        this.sm.ready(this.summary());
      });
    }
    return this.reloading;
  }

  /**
   * `baton rollback`: with a canary window open, the parked generation serves again at once;
   * otherwise the release before the serving one (as it was launched, symlinks resolved then) is
   * started as a new generation and promoted like a reload. ERR_NO_PREVIOUS when there is none.
   */
  async rollback(): Promise<RollbackResult> {
    if (this.canary.open) return { how: 'unparked', ...this.canary.requestRollback() };
    if (this.reloading) throw new BatonError('ERR_RELOAD_FAILED', 'cannot roll back: a reload is under way (try again once it has settled)');
    const previous = this.releases.previous();
    const replaced = this.active?.id ?? null;
    if (!previous) throw new BatonError('ERR_NO_PREVIOUS', `nothing to roll back to: generation ${replaced ?? '(none)'} runs the first release this supervisor started`);
    // Read now: once promoted, the history files that release under the new generation.
    const release = previous.generation;
    const result = await this.reload({ rollbackTo: previous.config });
    this.sink.count('reloads_rolled_back');
    const message = `rolled back: generation ${result.generation} runs the release of generation ${release} again; generation ${replaced} drains`;
    this.announce('warn', { type: 'rolled-back', generation: result.generation, release, replaced }, message);
    return { how: 'relaunched', ...result, release, replaced };
  }

  /** Drains every generation, then closes the sockets; resolves when all have exited. */
  stop(reason = 'stop requested'): Promise<void> {
    if (this.stopped) return this.stopped;
    this.announce('info', { type: 'stopping', reason }, 'stopping: draining every generation');
    if (!this.mode.is('retiring')) {
      this.mode.to('stopping');
      this.sm.stopping();
    }
    this.deps.os.clearTimeout(this.restartTimer);
    // Standbys hold copies of the listeners and would be taken by no one: they go first.
    this.deps.os.dispose?.();
    this.stopped = new Promise<void>((resolve) => {
      this.once('stopped', resolve);
    });
    for (const g of this.live()) g.drain(reason);
    this.finishStopIfDone();
    return this.stopped;
  }

  /** Kills every generation now (a second interrupt). */
  forceStop(): void {
    this.announce('warn', { type: 'stop-forced', live: this.live().length }, 'forced stop: killing every generation');
    for (const g of this.live()) g.kill();
  }

  /**
   * Freezes the supervisor for an upgrade (reloads are refused) and returns what the successor
   * needs: every held listener and the next generation number. Then `retire` or `resumeAfterHandOver`.
   */
  beginHandOver(): HandOver {
    if (this.mode.ending) throw new BatonError('ERR_SHUTTING_DOWN', 'cannot upgrade: the supervisor is stopping');
    // The successor numbers its generations from here: a reload promoting one meanwhile would collide.
    if (this.mode.is('reloading', 'upgrading')) throw new BatonError('ERR_UPGRADING', `cannot upgrade: a ${this.mode.mode === 'reloading' ? 'reload' : 'n upgrade'} is under way`);
    this.upgradeFrom = this.mode.to('upgrading');
    return { nextGeneration: this.nextId, listeners: this.store.all() };
  }

  /** The successor failed: this supervisor carries on as before (restarting, if its generation crashed meanwhile). */
  resumeAfterHandOver(): void {
    if (!this.mode.is('upgrading')) return;
    this.mode.settle(this.upgradeFrom, this.active !== undefined);
    if (!this.active && !this.live().some((g) => g.state === 'starting')) this.restart();
    this.reclaimAbandoned(20);
  }

  /** A successor that died outright left its generation in the stats table: free it once that process is gone too. */
  private reclaimAbandoned(tries: number): void {
    if (this.sink.reclaimForeign() > 0 && tries > 0) this.deps.os.setTimeout(() => this.reclaimAbandoned(tries - 1), 250);
  }

  /**
   * The successor serves with the same sockets and segment: drain every generation and finish,
   * closing no socket and leaving the segment to it. Resolves when the last generation has exited.
   */
  retire(successor: number): Promise<void> {
    if (!this.mode.is('retiring', 'stopped')) this.mode.to('retiring');
    this.sink.handOver();
    this.sm.mainPid(successor);
    this.sm.close();
    return this.stop(`handed over to supervisor pid ${successor}`);
  }

  /**
   * The successor died after retire(), while this supervisor still drains: serve again, with a
   * new generation (those draining carry on draining), numbered after `lastGeneration`, the
   * successor's. False when it is too late (it has stopped).
   */
  takeBack(lastGeneration: number): boolean {
    if (!this.mode.is('retiring') || this.live().length === 0) return false;
    this.nextId = Math.max(this.nextId, lastGeneration + 1);
    if (this.active?.state === 'draining') this.active = undefined;
    this.mode.to('recovering');
    this.stopped = undefined;
    this.sink.takeBack?.();
    this.sm.mainPid(process.pid);
    this.announce('warn', { type: 'taken-back' }, 'the successor died after the hand-over: this supervisor serves again');
    this.restart();
    this.reclaimAbandoned(20);
    return true;
  }

  private async doReload(cold: boolean, sameConfig: boolean, received: number, rollbackTo?: Config): Promise<ReloadResult> {
    let next: Config;
    try {
      next = rollbackTo ?? (sameConfig ? this.config : this.deps.loadConfig());
      checkReloadConfig(this.config, next, this.sink, cold, this.log, this.events);
    } catch (err) {
      throw this.reloadFailed(err);
    }
    this.deps.os.clearTimeout(this.restartTimer);
    try {
      const result = await this.launchAndPromote(next, 'reload', rollbackTo ? 'back' : sameConfig ? 'same' : 'new', { received, configRead: monotonicMs() });
      this.sink.count('reloads_ok');
      return result;
    } catch (err) {
      throw this.reloadFailed(err);
    }
  }

  private reloadFailed(err: unknown): BatonError {
    this.sink.count('reloads_failed');
    const serving = this.active ? `generation ${this.active.id} keeps serving` : 'no generation is serving';
    const error = new BatonError('ERR_RELOAD_FAILED', `reload failed: ${(err as Error).message}\n(${serving})`, { cause: err });
    const code = (err as { code?: string }).code ?? error.code;
    this.announce('error', { type: 'reload-failed', code, message: error.message }, 'reload failed', { err: error });
    return error;
  }

  protected reap(generation: Generation, exit: { code: number | null; signal: NodeJS.Signals | null }): void {
    this.store.release(generation.id);
    this.memory?.exited(generation.id);
    if (generation.killedAtShutdown) this.sink.count('drain_kills');
    this.canary.exited(generation, describeExit(exit));
    this.generations.trim();
    if (generation === this.active) {
      this.active = undefined;
      if (this.mode.is('serving')) this.mode.to('recovering');
      if (!this.mode.ending) {
        this.crashed(
          generation,
          new BatonError('ERR_GENERATION_EXITED', `active generation ${generation.id} (pid ${generation.pid}) ${describeExit(exit)}`),
        );
      }
    }
    this.finishStopIfDone();
  }

  /**
   * The active generation accepts no more on a listener it accepted on (issue #11): every request
   * would time out while it looks healthy. Replaced like a crash: drained out, then a restart with
   * backoff (so a program that always does this ends in the crash loop's exit).
   */
  protected stoppedAccepting(generation: Generation, fd: number, lostForMs: number): void {
    if (generation !== this.active || this.mode.ending) return;
    const listener = this.store.all().find((l) => l.fd === fd)?.name ?? `fd ${fd}`;
    const acceptGraceMs = this.config.acceptGrace ?? 0;
    const err = new BatonError(
      'ERR_STOPPED_ACCEPTING',
      `active generation ${generation.id} (pid ${generation.pid}) stopped accepting on listener '${listener}' for ${formatDuration(lostForMs)} (accept-grace ${formatDuration(acceptGraceMs)})`,
    );
    this.announce('error', { type: 'stopped-accepting', generation: generation.id, listener, lostForMs, acceptGraceMs }, err.message, { reason: 'stopped-accepting' });
    this.active = undefined;
    if (this.mode.is('serving')) this.mode.to('recovering');
    generation.drain('it stopped accepting');
    this.crashed(generation, err);
  }

  /** The serving generation died (or none could start): restart with backoff, or give up. */
  protected crashed(generation: Generation, err: Error): void {
    this.sink.count('crashes');
    this.memory?.mark(generation.id, 'crash', err.message);
    const delay = this.backoff.failure();
    const tail = generation.stderrTail();
    if (delay === null) {
      const fatal = new BatonError(
        'ERR_CRASH_LOOP',
        `${err.message}; ${this.config.restart.maxFailures} failures within ${formatDuration(this.config.restart.window)}: giving up`,
        { cause: err },
      );
      this.announce('fatal', { type: 'crash-loop', generation: generation.id, message: fatal.message, stderr: tail }, 'crash loop: giving up', { err: fatal });
      this.emit('fatal', fatal);
      return;
    }
    this.announce('error', { type: 'restarting', generation: generation.id, restartInMs: delay, message: err.message, stderr: tail }, `generation ${generation.id} failed; restarting in ${formatDuration(delay)}`, { err });
    if (this.live().some((g) => g.state === 'starting')) return;
    this.restartTimer = this.deps.os.setTimeout(() => this.restart(), delay);
  }

  private restart(): void {
    // During an upgrade the successor's generation comes next (and has the next number); should the
    // upgrade fail, resumeAfterHandOver restarts instead.
    if (!this.mode.is('starting', 'recovering') || this.active) return;
    void this.launchAndPromote(this.config, 'restart').catch(() => {});
  }

  private finishStopIfDone(): void {
    if (!this.mode.ending || this.mode.is('stopped') || this.live().length > 0) return;
    const retiring = this.mode.is('retiring');
    this.mode.to('stopped');
    this.deps.os.dispose?.(); // one booted for a generation that became ready while stopping
    if (retiring) this.store.handOver();
    else this.store.closeAll();
    this.memory?.stop();
    this.sink.close();
    // A retiring supervisor stopped notifying when it handed over.
    if (!retiring) this.sm.close();
    this.announce('info', { type: 'stopped', handedOver: retiring }, retiring ? 'every generation has exited; the successor holds the listeners' : 'every generation has exited; listeners closed');
    this.emit('stopped');
  }
}
