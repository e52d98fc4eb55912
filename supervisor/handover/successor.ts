import type { Logger } from 'pino';
import type { Supervisor } from '../core/supervisor.ts';
import type { UpgradeState } from '../sockets/inherited-sockets.ts';
import { announce } from '../core/events.ts';
import { announceSuccessor } from './predecessor.ts';

export interface SuccessorOptions {
  supervisor: Supervisor;
  upgrade: UpgradeState;
  log: Logger;
  /** Binds this supervisor's control socket over the predecessor's path. */
  takeOverControl(): Promise<void>;
  /** Called once, when this supervisor becomes the one in charge (before its control socket is bound). */
  onInCharge(why: 'handed-over' | 'predecessor-died'): void;
  /** Frees what the predecessor's generations left in the stats table; returns how many are still alive. */
  reclaimStats(): number;
}

/**
 * The successor's half of `baton upgrade`, as a whole: once its first generation is active it
 * announces itself and takes the control socket when the predecessor agrees. If the predecessor
 * dies first, at any step (its IPC channel closes), nobody would own the control socket and
 * SIGTERM would find a successor still standing down on failure: so it takes over at once,
 * whether its own generation serves yet or not (a failing one then restarts as in any supervisor).
 */
export function followPredecessor(options: SuccessorOptions): void {
  const { supervisor, upgrade, log } = options;
  let inCharge = false;
  const takeOver = async (why: 'handed-over' | 'predecessor-died'): Promise<void> => {
    if (inCharge) return;
    inCharge = true;
    process.off('disconnect', onDisconnect);
    options.onInCharge(why);
    await options.takeOverControl();
  };
  const settle = (promise: Promise<void>, reason: () => 'handed-over' | 'predecessor-died'): void => {
    promise
      .then(() => {
        const why = reason();
        announce(supervisor.events, log, 'info', { type: 'upgraded', predecessor: upgrade.from }, 'upgrade complete: this supervisor serves', { why });
        if (why === 'predecessor-died') reclaim(options, 20);
      })
      .catch((err: unknown) => log.error({ err }, 'cannot bind the control socket after the upgrade; signals still work'));
  };
  const onDisconnect = (): void => {
    if (inCharge) return;
    log.warn({ predecessor: upgrade.from }, 'the previous supervisor is gone before handing over: taking over the control socket now');
    settle(takeOver('predecessor-died'), () => 'predecessor-died');
  };
  if (!process.connected) return onDisconnect();
  process.on('disconnect', onDisconnect);
  supervisor.once('active', ({ generation }) => {
    if (inCharge) return;
    // From here announceSuccessor hears of the predecessor's death itself (its reply never comes).
    process.off('disconnect', onDisconnect);
    let why: 'handed-over' | 'predecessor-died' = 'handed-over';
    const done = announceSuccessor(generation, log, () => {
      if (!process.connected) why = 'predecessor-died';
      return takeOver(why);
    });
    settle(
      done.then(() => undefined),
      () => why,
    );
  });
}

/** The predecessor's generations die with it (their reapers see it go): free their stats writers once they have. */
function reclaim(options: SuccessorOptions, tries: number): void {
  if (options.reclaimStats() > 0 && tries > 0) setTimeout(() => reclaim(options, tries - 1), 250).unref();
}
