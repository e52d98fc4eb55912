import type { Identify } from './probe.ts';

/** `baton-upgrade`: Baton replacing its supervisor process (`POST /upgrade`) instead of the app. */
export type System = 'baton' | 'baton-upgrade' | 'haproxy' | 'pm2';

/** How a system is named in the tables. */
export const SYSTEM_LABEL: Record<System, string> = { baton: 'Baton', 'baton-upgrade': 'Baton upgrade', haproxy: 'HAProxy', pm2: 'PM2 cluster' };

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
}

/** A system under test: something that answers HTTP on `port` and can be reloaded. */
export interface Target {
  system: System;
  /** What is being reloaded, for the output. */
  describe: string;
  port: number;
  identify: Identify;
  /** Reloads once; `old` is the identity (pid) serving before. */
  reload(old: string): Promise<ReloadSample>;
  /** Notable lines the system logged (warnings and errors), for the problems section. */
  problems(): string[];
  stop(): Promise<void>;
}
