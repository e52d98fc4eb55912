import type { ReloadTiming } from '../../shared/reload-timing.ts';
import type { CpuSource } from './cpu-account.ts';
import type { Identify } from './probe.ts';

/**
 * How a reload is asked for: `api` = the control API (Baton: POST /reload on the control socket;
 * HAProxy: `reload` on the master CLI), `signal` = a signal (Baton: SIGHUP; HAProxy: SIGUSR2 to
 * the master, its reload signal in master-worker mode), `cli` = Baton's command line (`baton reload`).
 */
export type Trigger = 'api' | 'signal' | 'cli';

/** `baton-upgrade`: Baton replacing its supervisor process (`POST /upgrade`) instead of the app. */
export type System = 'baton' | 'baton-standby' | 'baton-upgrade' | 'haproxy' | 'pm2';

/** How a system is named in the tables. */
export const SYSTEM_LABEL: Record<System, string> = { baton: 'Baton', 'baton-standby': 'Baton, standby', 'baton-upgrade': 'Baton upgrade', haproxy: 'HAProxy', pm2: 'PM2 cluster' };

/** One reload as seen by the bench. */
export interface ReloadSample {
  /** Reload requested → the new process answers a probe on a new connection (outside view). */
  probeMs: number;
  /** Reload requested → the system itself reports the new process (Baton: POST /reload returns; HAProxy: `show proc` lists the new worker). */
  reportedMs: number;
  /** Baton only: the supervisor's readyMs (new generation spawned → ready). */
  readyMs?: number;
  probeAttempts: number;
  probeErrors: string[];
  identity: string;
  trigger?: Trigger;
  /** The monotonic clock (shared/reload-timing.ts) when the bench asked for the reload. */
  askedAt?: number;
  /** Baton only: the supervisor's marks of this reload. */
  timing?: ReloadTiming;
  /** `baton reload` only: the CPU (ms) the command's process used. */
  cliCpuMs?: number;
}

/** A system under test: something that answers HTTP on `port` and can be reloaded. */
export interface Target {
  system: System;
  /** What is being reloaded, for the output. */
  describe: string;
  port: number;
  /** Baton: its control socket. */
  controlSocket?: string;
  identify: Identify;
  /** Reloads once; `old` is the identity (pid) serving before. @default trigger 'api', probeIntervalMs 0 (back to back) */
  reload(old: string, trigger?: Trigger, probeIntervalMs?: number): Promise<ReloadSample>;
  /** The triggers this system has (besides 'api'). */
  triggers?: Trigger[];
  /** CPU time (ms) the supervisor (Baton) or master (HAProxy) process has used so far. */
  supervisorCpuMs?(): number;
  /** The supervisor's (HAProxy: the master's) pid now, for /proc figures. */
  supervisorPid?(): number;
  /** Its processes, for the CPU accounting of each phase (cpu-account.ts); `tally`: how the load generator tells which pid served a response (load-worker.ts `identify`). */
  cpu?: CpuSource & { tally: string };
  /**
   * Asks for a reload by signal and returns at once, without waiting for it (Baton: SIGHUP to the
   * supervisor; HAProxy: SIGUSR2 to the master): for reloads on a fixed schedule.
   */
  ask?(): void;
  /** Reloads the system has carried out so far (Baton: promotions after a reload; HAProxy: the master's reload count). */
  reloadsDone?(): Promise<number>;
  /** Baton: reloads the supervisor logged as failed (`reload-failed`) so far. */
  reloadsFailed?(): number;
  /** Notable lines the system logged (warnings and errors), for the problems section. */
  problems(): string[];
  stop(): Promise<void>;
}
