import type { ProcessExit, SpawnSpec } from '../os/os.ts';
import type { SharedValue } from '../../shared/shared-value.ts';
import type { TransitionTable } from './state-table.ts';

/** A worker's state; a generation's is the same set (see generation.ts). */
export type WorkerState = 'starting' | 'ready' | 'active' | 'draining' | 'exited';

/** What a move says besides its states: how it became ready, why it drains, how it exited. */
export interface WorkerStateDetail {
  /** ready: what made it ready (sdk, notify, accepting, tcp, accepting+http). */
  via?: string;
  /** ready: ms from spawn. */
  readyMs?: number;
  /** draining: why. */
  reason?: string;
  /** exited: its exit code, or null when a signal ended it. */
  code?: number | null;
  /** exited: the signal that ended it, or null. */
  signal?: NodeJS.Signals | null;
}

/** The moves a worker (and a generation) may make; `transition()` enforces it. */
export const WORKER_TRANSITIONS: TransitionTable<WorkerState> = {
  starting: ['ready', 'draining', 'exited'],
  ready: ['active', 'draining', 'exited'],
  active: ['draining', 'exited'],
  draining: ['exited'],
  exited: [],
};
export type Readiness = 'auto' | 'sdk' | 'accepting' | 'notify' | 'tcp';


export interface WorkerOptions {
  /** The generation's number. */
  id: number;
  /** The worker's slot in its generation, 0..workers-1. @default 0 */
  worker?: number;
  /** How many workers the generation has (a lone worker's messages name only the generation). @default 1 */
  workers?: number;
  instance: string;
  spawn: SpawnSpec;
  readiness: Readiness;
  readyTimeout: number;
  drainTimeout: number;
  shutdownTimeout: number;
  /** Sent to a generation that does not speak the protocol to make it drain. */
  drainSignal: NodeJS.Signals;
  /** While active, how long it may stop accepting on a listener it accepted on before 'stopped-accepting'. @default off */
  acceptGrace?: number;
  /** The stats layout version the supervisor's segment has; a generation whose code writes another is refused. */
  statsLayout?: number;
  /** A further check once the generation accepts (readiness `http:`), or the whole check (`tcp`); ready when it resolves true for the generation's pid. */
  probe?: (pid: number) => Promise<boolean>;
  /** Binds (or finds) a listener a generation asks for at run time. */
  requestListener(address: string, generation: number): { fd: number; name: string; address: string };
  /** The shared TLS session ticket key (base64) and its expiry. */
  ticketKey?(rotateEvery: number): { key: string; expiresAt: number };
  /** A reload the generation asked for (its certificate files changed); resolves with the new generation. */
  reload?(reason: string, generation: number): Promise<number>;
  /** A value the worker shares with its generation (checked): resolves with how many workers acknowledged it. */
  share?(key: string, value: SharedValue): Promise<number>;
  /** The generation's shared values so far, for the worker's hello. */
  shared?(): Record<string, SharedValue>;
}

export interface WorkerInfo {
  generation: number;
  worker: number;
  pid: number;
  state: WorkerState;
  startedAt: number;
  uptimeMs: number;
  connections: number | null;
  sdk: boolean;
  /** The last STATUS= the generation sent to its NOTIFY_SOCKET. */
  status?: string;
  exit?: ProcessExit;
  /** Resident memory in bytes, read by the supervisor (`baton status`, several workers). */
  rss?: number;
}

