import type { EventSink } from './events.ts';
import type { Generation } from './generation.ts';

/**
 * Publishes what a generation and its workers do (their own typed EventEmitter events) as the
 * supervisor's events. Call right after the generation is made: its first workers are already
 * spawned, so they are announced here.
 */
export function relayGeneration(generation: Generation, events: EventSink): void {
  const id = generation.id;
  type W = Generation['workers'][number];
  const starting = (w: W): void => events.publish({ type: 'worker-starting', generation: id, worker: w.worker, pid: w.pid });
  for (const w of generation.workers) starting(w);
  generation.on('worker-start', starting);
  generation.on('worker-state', (w, to, from) => events.publish({ type: 'worker-state', generation: id, worker: w.worker, pid: w.pid, from, to }));
  generation.on('state', (to, from) => events.publish({ type: 'generation-state', generation: id, from, to }));
  generation.on('worker-timeout', (w, kind, connections) =>
    events.publish({ type: kind === 'drain' ? 'drain-timeout' : 'shutdown-timeout', generation: id, worker: w.worker, pid: w.pid, connections }),
  );
  generation.on('worker-restarted', (w) => events.publish({ type: 'worker-restarted', generation: id, worker: w.worker, pid: w.pid }));
}
