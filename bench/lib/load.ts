// Main-thread side of the load generator (see load-worker.ts): start it, switch phases, stop it.
import { Worker } from 'node:worker_threads';
import type { Kind, LoadConfig, PhaseCounts, WorkerCommand, WorkerReply } from './load-worker.ts';

export type { Kind, PhaseCounts };

export interface LoadRun {
  /** Starts counting into a new phase; resolves once the worker has switched. */
  phase(name: string): Promise<void>;
  /** Stops every client and resolves with the counts of every phase. */
  stop(): Promise<Record<string, PhaseCounts>>;
  /** Ends the worker without waiting for results (error path). */
  terminate(): Promise<number>;
}

export function startLoad(config: LoadConfig): LoadRun {
  const worker = new Worker(new URL('./load-worker.ts', import.meta.url), { workerData: config });
  let failed: Error | undefined;
  const waiting: { match: (r: WorkerReply) => boolean; resolve: (r: WorkerReply) => void; reject: (e: Error) => void }[] = [];
  worker.on('message', (r: WorkerReply) => {
    const i = waiting.findIndex((w) => w.match(r));
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(r);
  });
  const die = (err: Error): void => {
    failed = err;
    for (const w of waiting.splice(0)) w.reject(err);
  };
  worker.on('error', die);
  worker.on('exit', (code) => die(new Error(`load worker exited (code ${code})`)));

  const send = (cmd: WorkerCommand, match: (r: WorkerReply) => boolean, timeoutMs: number): Promise<WorkerReply> => {
    if (failed) return Promise.reject(failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load worker did not answer '${cmd.type}' within ${timeoutMs} ms`)), timeoutMs);
      waiting.push({
        match,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      worker.postMessage(cmd);
    });
  };

  return {
    async phase(name) {
      await send({ type: 'phase', name }, (r) => r.type === 'phase' && r.name === name, 10_000);
    },
    async stop() {
      const r = await send({ type: 'stop' }, (x) => x.type === 'result', config.timeoutMs + 10_000);
      await worker.terminate();
      return (r as Extract<WorkerReply, { type: 'result' }>).phases;
    },
    terminate: () => worker.terminate(),
  };
}
