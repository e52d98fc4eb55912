import { BatonError } from '../../shared/errors.ts';
import type { Timers } from '../os/os.ts';
import { describeExit, type Generation } from './generation.ts';

/**
 * The warm-up of a reload (`warmup`): the new generation, ready, accepts on the held sockets
 * beside the one it replaces for `ms` before that one drains, so it takes traffic while its JIT
 * warms instead of all of it cold. Resolves after `ms`; rejects with ERR_GENERATION_EXITED when a
 * worker of the new generation exits meanwhile (the old one has served all along: nothing is lost).
 */
export function warmUp(generation: Generation, ms: number, timers: Timers): Promise<void> {
  return new Promise((resolve, reject) => {
    const onExit = (worker: Generation['workers'][number], exit: Parameters<typeof describeExit>[0]): void => {
      timers.clearTimeout(timer);
      generation.off('worker-exit', onExit);
      reject(new BatonError('ERR_GENERATION_EXITED', `generation ${generation.id}: ${worker.label} (pid ${worker.pid}) ${describeExit(exit)} during its warm-up`));
    };
    const timer = timers.setTimeout(() => {
      generation.off('worker-exit', onExit);
      resolve();
    }, ms);
    generation.on('worker-exit', onExit);
  });
}
