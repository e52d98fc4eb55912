// What a generation is made with, what it reports, and the events it emits (generation.ts).
import type { BatonError } from '../../shared/errors.ts';
import type { ProcessExit } from '../os/os.ts';
import type { BackoffPolicy } from './backoff.ts';
import type { Worker, WorkerInfo, WorkerOptions, WorkerState } from './worker.ts';
import type { WorkerStateDetail } from './worker-types.ts';

/** How a generation starts its workers and restarts a crashed one. */
export interface GenerationOptions {
  id: number;
  /** Worker processes of the same command. @default 1 */
  workers?: number;
  /** What the worker in `slot` is started with; called again for each restart of that slot. */
  worker(slot: number): WorkerOptions;
  /** A crashed worker of a serving generation restarts alone with this backoff (per slot); too many crashes across the generation give up. */
  restart: BackoffPolicy;
  /** Slots started at once; a rolling rollout starts the rest with startSlot(). @default workers */
  initial?: number;
}

/** A generation's figures (`baton status`). */
export interface GenerationInfo extends Omit<WorkerInfo, 'worker'> {
  /** Each worker's own figures, when the generation has more than one. */
  workers?: WorkerInfo[];
}

/** The events of a Generation. */
export interface GenerationEvents {
  state: [to: WorkerState, from: WorkerState];
  /** Every worker has exited; `exit` is the last one's. */
  exit: [exit: ProcessExit];
  /** A worker process was spawned (at launch or to restart its slot). */
  'worker-start': [worker: Worker];
  'worker-state': [worker: Worker, to: WorkerState, from: WorkerState, detail: WorkerStateDetail];
  /** A worker reached its drain or shutdown timeout. */
  'worker-timeout': [worker: Worker, kind: 'drain' | 'shutdown', connections: number | null];
  'worker-exit': [worker: Worker, exit: ProcessExit];
  /** A worker restarted in its slot is ready and serves. */
  'worker-restarted': [worker: Worker];
  /** Workers of this serving generation crashed too often: give up. */
  'crash-loop': [error: BatonError];
  /** A lone worker, active, stopped accepting on `fd` past the accept grace (one of several restarts alone). */
  'stopped-accepting': [fd: number, lostForMs: number];
}
