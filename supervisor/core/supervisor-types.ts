import type { Canary } from '../canary/index.ts';
import type { Holder } from '../os/socket-holders.ts';
import type { Logger } from 'pino';
import type { BatonError } from '../../shared/errors.ts';
import type { Config } from '../config/config.ts';
import type { ReloadTiming } from '../../shared/reload-timing.ts';
import type { MemoryFlag } from '../memory/monitor.ts';
import type { MemoryProbe } from '../memory/proc.ts';
import type { Os } from '../os/os.ts';
import type { Listener } from '../sockets/fd-store.ts';
import type { InheritedSocket, SocketOrigin } from '../sockets/inherited-sockets.ts';
import type { ServiceManager } from '../systemd/service-manager.ts';
import type { GenerationInfo } from './generation.ts';
import type { StatsSink } from './stats-sink.ts';
import type { SupervisorMode } from './supervisor-mode.ts';
import type { EventBus } from './events.ts';
import type { CanaryOutcome } from '../canary/canary.ts';

export interface ReloadResult {
  generation: number;
  pid: number;
  readyMs: number;
  /** Where the time went, as marks on the monotonic clock (shared/reload-timing.ts). */
  timing?: ReloadTiming;
}

/** What supervisor/canary adds to the status. */
type CanaryStatus = ReturnType<Canary['status']>;

export interface StatusSnapshot {
  instance: string;
  pid: number;
  uptimeMs: number;
  active: number | null;
  stopping: boolean;
  /** What the supervisor is doing (see SupervisorMode); absent from a supervisor older than the field. */
  mode?: SupervisorMode;
  generations: (GenerationInfo & { memory?: MemoryFlag })[];
  /** `from`: where a socket this supervisor did not bind came from. */
  listeners: { name: string; address: string; fd: number; from?: SocketOrigin; strays?: Holder[] }[];
  /** The open canary window, hurried draining generations, whether the preload is on (supervisor/canary). */
  canary?: CanaryStatus['canary'];
  hurried?: number[];
  preload?: true;
  /** Processes booted ahead for the next generation's worker slots (`standby: true`). */
  standbys?: { pid: number; worker: number; waiting: boolean }[];
}

/** How `baton rollback` went: the parked generation of a canary window unparked, or the previous release relaunched. */
export type RollbackResult =
  | ({ how: 'unparked' } & CanaryOutcome)
  | ({ how: 'relaunched'; release: number; replaced: number | null } & ReloadResult);

export interface SupervisorEvents {
  /** The supervisor gave up (crash loop); the process should exit non-zero. */
  fatal: [error: BatonError];
  /** Every generation has exited after stop(). */
  stopped: [];
  /** A generation was promoted: it serves, its predecessors drain. */
  active: [promoted: ReloadResult & { why: 'start' | 'reload' | 'restart' }];
  /** A generation failed to start while none was serving (a restart with backoff follows). */
  'start-failed': [error: Error];
}

/** What a supervisor hands a successor (baton upgrade) besides the descriptors of `listeners`. */
export interface HandOver {
  nextGeneration: number;
  listeners: Listener[];
}

export interface SupervisorDeps {
  os: Os;
  log: Logger;
  /** Reads the configuration afresh (from disk and flags); called on every reload. */
  loadConfig(): Config;
  /** The shared stats segment. @default NoStats (none) */
  stats?: StatsSink;
  /** Reads a process's memory from /proc; without one the supervisor tracks no memory. */
  memoryProbe?: MemoryProbe;
  /** Hears of readiness, reloads and the stop (systemd's sd_notify). @default NoServiceManager */
  serviceManager?: ServiceManager;
  /** Listening sockets passed in by systemd or by the supervisor this one took over from. */
  inherited?: InheritedSocket[];
  /** Where the supervisor publishes its typed events. @default a new EventBus */
  events?: EventBus;
  /** Number of the first generation: a successor continues its predecessor's numbering. @default 1 */
  firstGeneration?: number;
}
