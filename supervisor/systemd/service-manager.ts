import type { Logger } from 'pino';
import { sdNotify } from '../../shared/native/native.ts';
import { FD_STORE_PREFIX } from '../sockets/inherited-sockets.ts';

/**
 * What Baton tells the service manager that started it (systemd's sd_notify protocol).
 * `NoServiceManager` is the implementation when nothing listens, so callers never branch on it.
 */
export interface ServiceManager {
  /** The service is ready (startup done, or a reload finished either way); `status` is the STATUS= line. */
  ready(status: string): void;
  /** A reload started; READY must follow once it is over. */
  reloading(): void;
  stopping(): void;
  status(text: string): void;
  /** Another process (an upgraded supervisor) is now the service's main process. */
  mainPid(pid: number): void;
  /** Keeps these listening sockets in the manager's descriptor store under their names, if it offers one. */
  storeFds(sockets: { name: string; fd: number }[]): void;
  /** Drops a socket from the descriptor store (its listener was removed from the config). */
  removeFds(name: string): void;
  /** Stops the watchdog pings. */
  close(): void;
  /** The variables a successor supervisor needs to speak to the same manager. */
  readonly env: Record<string, string>;
}

/** Variables systemd sets for a notify service; the supervisor takes them out of its own environment so no generation inherits them. */
const SYSTEMD_VARS = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'FDSTORE'] as const;

/**
 * The name a listener is stored under: prefixed, so that after a restart Baton tells its own
 * sockets from a socket unit's; systemd allows at most 255 printable ASCII characters, no ':'.
 */
function fdName(name: string): string {
  return `${FD_STORE_PREFIX}${name}`.replace(/[^\x21-\x39\x3b-\x7e]/g, '_').slice(0, 255);
}

/** The service manager described by `env` (taking its variables out of it), or none. */
export function serviceManagerFrom(env: NodeJS.ProcessEnv, log: Logger, pid = process.pid): ServiceManager {
  const taken: Record<string, string> = {};
  for (const key of SYSTEMD_VARS) {
    const value = env[key];
    if (value !== undefined) taken[key] = value;
    delete env[key];
  }
  const socket = taken.NOTIFY_SOCKET;
  if (!socket) return new NoServiceManager();
  // A watchdog meant for another process (WATCHDOG_PID) is not ours to feed.
  const watchdogPid = taken.WATCHDOG_PID === undefined ? pid : Number(taken.WATCHDOG_PID);
  const watchdogUsec = watchdogPid === pid ? Number(taken.WATCHDOG_USEC ?? 0) : 0;
  const fdStore = Number(taken.FDSTORE ?? 0);
  return new SystemdNotifier(socket, { watchdogUsec, fdStore, env: taken }, log);
}

/** sd_notify datagrams to $NOTIFY_SOCKET. A send that fails is logged, never thrown: systemd going away must not stop the service. */
export class SystemdNotifier implements ServiceManager {
  readonly env: Record<string, string>;
  private readonly socket: string;
  private readonly log: Logger;
  private readonly fdStore: number;
  private readonly stored = new Set<string>();
  private watchdog: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(socket: string, options: { watchdogUsec: number; fdStore: number; env: Record<string, string> }, log: Logger) {
    this.socket = socket;
    this.log = log;
    this.fdStore = options.fdStore;
    // The successor gets our watchdog under its own pid once it is the main process.
    const { WATCHDOG_PID: _pid, ...env } = options.env;
    this.env = env;
    if (options.watchdogUsec > 0) {
      // Half the period, as sd_watchdog_enabled(3) advises: a ping sent means the event loop ran.
      const every = Math.max(1, Math.floor(options.watchdogUsec / 2000));
      this.watchdog = setInterval(() => this.send('WATCHDOG=1'), every).unref();
    }
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${oneLine(status)}\nMAINPID=${process.pid}`);
  }

  reloading(): void {
    // MONOTONIC_USEC is CLOCK_MONOTONIC; process.hrtime reads the same clock on Linux.
    this.send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}\nSTATUS=reloading`);
  }

  stopping(): void {
    this.send('STOPPING=1\nSTATUS=stopping: draining every generation');
  }

  status(text: string): void {
    this.send(`STATUS=${oneLine(text)}`);
  }

  mainPid(pid: number): void {
    this.send(`MAINPID=${pid}`);
  }

  storeFds(sockets: { name: string; fd: number }[]): void {
    if (this.fdStore <= 0) return;
    for (const s of sockets) {
      const name = fdName(s.name);
      if (this.stored.has(name)) continue;
      if (this.stored.size >= this.fdStore) {
        this.log.warn({ listener: s.name, max: this.fdStore }, "systemd's descriptor store is full (FileDescriptorStoreMax): this listener is not kept across a restart");
        continue;
      }
      // FDPOLL=0: a listening socket never signals hangup, and systemd need not watch it.
      if (this.send(`FDSTORE=1\nFDNAME=${name}\nFDPOLL=0`, [s.fd])) this.stored.add(name);
    }
  }

  removeFds(name: string): void {
    const stored = fdName(name);
    if (!this.stored.delete(stored)) return;
    this.send(`FDSTOREREMOVE=1\nFDNAME=${stored}`);
  }

  close(): void {
    clearInterval(this.watchdog);
  }

  private send(message: string, fds: number[] = []): boolean {
    try {
      sdNotify(this.socket, message, fds);
      this.failing = false;
      return true;
    } catch (err) {
      // One warning per outage, not one per watchdog tick.
      if (!this.failing) this.log.warn({ err, socket: this.socket }, 'cannot notify the service manager');
      this.failing = true;
      return false;
    }
  }
}

/** No service manager: every notification is dropped. */
export class NoServiceManager implements ServiceManager {
  readonly env: Record<string, string> = {};
  ready(): void {}
  reloading(): void {}
  stopping(): void {}
  status(): void {}
  mainPid(): void {}
  storeFds(): void {}
  removeFds(): void {}
  close(): void {}
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ');
}
