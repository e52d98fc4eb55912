/** A validated configuration's shape: what the rest of the supervisor reads. */
import type { Address } from '../../shared/address.ts';
import type { StatsCapacities } from '../../shared/stats/index.ts';
import type { CanaryConfig } from '../canary/evaluate.ts';
import type { ParsedConfig as Parsed } from './config-schema.ts';

export interface MemoryLimit {
  rss?: number;
  heap?: number;
}

export interface MemoryConfig {
  interval: number;
  window: number;
  history: number;
  softLimit?: MemoryLimit;
  hardLimit?: MemoryLimit;
  replaceCooldown: number;
  growth: { minSlope: number; minGrowth: number; minR2: number; loadTolerance: number };
  allocator: 'default' | 'jemalloc';
  profileDir?: string;
}

/**
 * How a generation is judged ready; `http` adds a GET through a held listener that must answer 2xx.
 * `notify`: READY=1 on its NOTIFY_SOCKET; `tcp`: it accepts a connection made through a TCP listener.
 */
export interface ReadinessConfig {
  mode: 'auto' | 'sdk' | 'accepting' | 'notify' | 'tcp';
  http?: { path: string; listener?: string };
}


export interface ListenerConfig {
  name: string;
  address: Address;
  /** Canonical address as configured (port 0 stays 0): the socket store's key. */
  key: string;
  backlog: number;
  mode?: number;
  /** One SO_REUSEPORT socket per worker slot (a TCP listener with `balance: reuseport` and several workers). */
  reusePort?: boolean;
}

/** A validated configuration, resolved against the file it came from. */
export interface Config {
  name: string;
  command: string[];
  /** What `baton check` runs to validate the child's own section (`check-command`). */
  checkCommand?: string[];
  cwd: string;
  env: Record<string, string>;
  listeners: ListenerConfig[];
  readyTimeout: number;
  drainTimeout: number;
  shutdownTimeout: number;
  /** How long the active generation may stop accepting on a listener it accepted on before it is replaced; 0 or absent: never. */
  acceptGrace?: number;
  /** How long a reload's new generation accepts beside the one it replaces before that one drains; 0 or absent: none. */
  warmup?: number;
  readiness: ReadinessConfig;
  drainSignal: NodeJS.Signals;
  restart: { maxFailures: number; window: number; backoffInitial: number; backoffMax: number };
  stats: { dir: string; maxBytes: number; maxNameLength: number; capacities: StatsCapacities };
  /** Memory tracking; absent (hand-built configs in unit tests): off. */
  memory?: MemoryConfig;
  /** The TCP metrics listener; absent: off. */
  metrics?: { listen: Address & { kind: 'tcp' } };
  controlSocket?: string;
  /** The gid admitted to the control socket besides its owner and root. */
  controlGroup?: number;
  runtimeListeners: Parsed['runtime-listeners'];
  logLevel: Parsed['log-level'];
  /** The config file, when there is one: re-read on every reload. */
  file?: string;
  /** The canary window after a reload; absent: off. */
  canary?: CanaryConfig;
  /** At most this many generations drain at once. @default 3 */
  maxDraining?: number;
  /** RSS the draining generations may hold together before the oldest is hurried; absent: no bound. */
  drainingMemoryBudget?: number;
  /** Each worker slot's next Node process is booted ahead (supervisor/os/standby-pool.ts). @default false */
  standby?: boolean;
  /**
   * The workers' scheduling policy, set by the exec shim before exec: `batch` (SCHED_BATCH: a
   * waking worker does not preempt what runs, for throughput on cores it shares), `idle`, or
   * `other`. Absent: inherited from the supervisor.
   */
  cpuScheduling?: 'other' | 'batch' | 'idle';
  /** `auto`: a `node` command gets Baton's preload. @default 'auto' */
  preload?: 'auto' | 'off';
  /** Share of drain-timeout for paced closes. @default 0.5 */
  pacedClose?: number;
  /** Worker processes per generation (`auto` resolved). @default 1 */
  workers?: number;
  /** How a reload replaces workers; `maxSurge`: extra processes a rolling one may have alive. @default all-at-once */
  rollout?: { mode: 'all-at-once' | 'rolling'; maxSurge: number };
}
