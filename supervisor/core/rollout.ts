import type { Logger } from 'pino';
import type { Generation } from './generation.ts';

/**
 * A rolling rollout: `next` replaces `previous` `surge` slots at a time. Each batch of `next`'s
 * workers must be ready before `previous`'s workers in those slots drain, and those must have
 * exited before the next batch starts, so at most `workers + surge` processes are alive. The last
 * batch's readiness makes `next` ready (the caller promotes it, which drains `previous`'s rest).
 * When a slot fails, the slots already replaced are rolled back — `previous` starts a worker there
 * again, then `next`'s drains — and the failure is rethrown (the caller drains `next`).
 * `next` must have been created with its first `surge` slots started.
 */
export async function rollOut(previous: Generation, next: Generation, surge: number, log: Logger): Promise<void> {
  const replaced: number[] = [];
  let batch: number[] = [];
  try {
    for (let first = 0; first < next.size; first += surge) {
      batch = Array.from({ length: Math.min(surge, next.size - first) }, (_, i) => first + i);
      if (first > 0) for (const slot of batch) void next.startSlot(slot).catch(() => {});
      // Any started worker failing fails the generation at once, in this batch or not.
      await Promise.race([Promise.all(batch.map((slot) => next.workers[slot]?.whenReady())), next.whenReady().then(() => {})]);
      if (first + surge >= next.size) break;
      log.info({ generation: next.id, slots: batch }, `rolling: generation ${next.id} serves slot ${batch.join(', ')}; generation ${previous.id}'s worker there drains`);
      await Promise.all(batch.map((slot) => previous.retireSlot(slot, `slot ${slot} replaced by generation ${next.id}`)));
      replaced.push(...batch);
    }
    await next.whenReady();
  } catch (err) {
    log.error({ generation: next.id, failedIn: batch, rollingBack: replaced }, `rolling: generation ${next.id} failed; rolling back slots ${replaced.join(', ') || '(none)'}`);
    await Promise.all(batch.map((slot) => next.retireSlot(slot, 'its rollout failed')));
    for (const slot of replaced) {
      try {
        await previous.restoreSlot(slot);
      } catch (restoreErr) {
        log.error({ err: restoreErr, generation: previous.id, slot }, `rolling back: generation ${previous.id} could not start slot ${slot} again`);
      }
      await next.retireSlot(slot, 'rolled back');
    }
    throw err;
  }
}

/** Resolves once every one of `generations` has exited (a rolling rollout waits for the draining ones, so its surge is all there is). */
export function allExited(generations: Generation[]): Promise<void> {
  return Promise.all(generations.map((g) => (g.state === 'exited' ? undefined : new Promise<void>((resolve) => g.once('exit', () => resolve()))))).then(() => {});
}
