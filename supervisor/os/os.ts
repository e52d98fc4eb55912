/**
 * The seam between the supervisor's logic and the operating system. `real-os.ts` implements it
 * with real processes and descriptors; unit tests drive the state machines with fakes.
 */
import type { Address } from '../../shared/address.ts';
import type { StandbyMessage, SupervisorMessage } from '../../shared/protocol.ts';
import type { Holder } from './socket-holders.ts';

export interface SpawnSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Listening descriptors, placed at fd 3 onward in the child. */
  listenFds: number[];
  /**
   * Receives the child's output line by line, stdout and stderr both piped (`baton dev` prefixes
   * them). Without it, stdout is inherited and stderr forwarded as is. The stderr tail is kept either way.
   */
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Where to bind the generation's own NOTIFY_SOCKET (announced in its environment); none when absent. */
  notifySocket?: string;
  /**
   * A Node command whose next process may be booted ahead (`standby: true`): this spawn takes a
   * waiting one of the same command, working directory, environment and sockets when there is one.
   */
  standby?: boolean;
}

/** One sd_notify datagram a generation (or one of its descendants) sent to its NOTIFY_SOCKET. */
export interface Notification {
  payload: string;
  /** The sender's pid. */
  pid: number;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One spawned generation process. */
export interface ChildPort {
  readonly pid: number;
  /** Sends on the IPC channel; false when the channel is gone. */
  send(message: SupervisorMessage | StandbyMessage): boolean;
  /** Sends descriptors on the SCM_RIGHTS channel; the message announcing them must follow. */
  sendFds(fds: number[], payload: string): void;
  kill(signal: NodeJS.Signals): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Called once, after the process has exited and its IPC channel has closed. */
  onExit(listener: (exit: ProcessExit) => void): void;
  /** The last lines the process wrote to stderr. */
  stderrTail(): string[];
  /** True when the process polls every given listening descriptor for connections (epoll). */
  isAccepting(listenFds: number[]): boolean;
  /** What the process tree sent to its NOTIFY_SOCKET since the last call, oldest first; never blocks. */
  readNotifications(): Notification[];
}

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Listening sockets, bound by the supervisor and never accepted on. */
export interface SocketOps {
  listen(address: Address, backlog: number, mode?: number, reusePort?: boolean): { fd: number; bound: Address };
  close(fd: number, address: Address): void;
}

export interface Os extends Timers, SocketOps {
  spawn(spec: SpawnSpec): ChildPort;
  /** `p` with every symlink resolved, or undefined when it does not exist. @default the path as given */
  realpath?(p: string): string | undefined;
  /** One GET of `path` through `address`; true for a 2xx answer within a second. */
  httpProbe(address: Address, path: string): Promise<boolean>;
  /** Connects through `address`; true when `pid` or a descendant accepts that very connection within a second. */
  tcpProbe(address: Address, pid: number): Promise<boolean>;
  /** Per listening descriptor, the processes outside every live generation that hold its socket (escaped descendants); absent in fakes. */
  strays?(fds: number[]): Map<number, Holder[]>;
  /** The processes booted ahead (`standby: true`), by worker slot. */
  standbys?(): { pid: number; worker: number; waiting: boolean }[];
  /** Ends what the OS layer started ahead of need (standbys); called once the supervisor has stopped. */
  dispose?(): void;
}
