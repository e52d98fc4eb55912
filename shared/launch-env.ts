/**
 * What a generation finds in its environment. Listening sockets follow systemd's convention
 * (fd 3 onward, LISTEN_FDS / LISTEN_FDNAMES / LISTEN_PID) so any socket-activation-aware server
 * works; BATON_* variables add what only Baton-aware children use.
 */

/** First inherited listening descriptor (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

export const ENV = {
  listenFds: 'LISTEN_FDS',
  listenFdNames: 'LISTEN_FDNAMES',
  listenPid: 'LISTEN_PID',
  /** This generation's own sd_notify(3) socket: READY=1 and STATUS= are read from it. */
  notifySocket: 'NOTIFY_SOCKET',
  /** JSON array of InheritedListener, one per inherited fd, in fd order. */
  listeners: 'BATON_LISTENERS',
  generation: 'BATON_GENERATION',
  /** The process's slot among its generation's workers, 0..N-1 (`workers: N`). */
  worker: 'BATON_WORKER',
  /** How many workers the generation has. */
  workers: 'BATON_WORKERS',
  instance: 'BATON_INSTANCE',
  protocol: 'BATON_PROTOCOL',
  /** Descriptor number of the SCM_RIGHTS channel (SOCK_SEQPACKET) to the supervisor. */
  fdChannel: 'BATON_FD_CHANNEL',
  /** Directory of the instance's shared stats segments. */
  statsDir: 'BATON_STATS_DIR',
  /** This generation's writer slot in the stats segments (absent: read-only, no-op handles). */
  statsWriter: 'BATON_STATS_WRITER',
  /** The exec shim's: the scheduling policy it sets before exec (`cpu-scheduling`), then unsets. */
  cpuScheduling: 'BATON_CPU_SCHEDULING',
  /** Milliseconds between the SDK's memory samples (absent or 0: none). */
  memoryInterval: 'BATON_MEMORY_INTERVAL',
} as const;

/** One inherited listener as announced in BATON_LISTENERS. */
export interface InheritedListener {
  fd: number;
  name: string;
  /** Canonical address (see formatAddress), with the port actually bound. */
  address: string;
}

/** Parses BATON_LISTENERS, or falls back to plain LISTEN_FDS / LISTEN_FDNAMES (no addresses). */
export function readInheritedListeners(env: NodeJS.ProcessEnv, pid: number): InheritedListener[] {
  const count = Number(env[ENV.listenFds] ?? 0);
  if (!Number.isInteger(count) || count <= 0) return [];
  if (env[ENV.listenPid] !== undefined && Number(env[ENV.listenPid]) !== pid) return [];
  const announced = env[ENV.listeners];
  if (announced) {
    const parsed: unknown = JSON.parse(announced);
    if (Array.isArray(parsed)) return parsed as InheritedListener[];
  }
  const names = (env[ENV.listenFdNames] ?? '').split(':');
  return Array.from({ length: count }, (_, i) => ({
    fd: LISTEN_FDS_START + i,
    name: names[i] || `fd${LISTEN_FDS_START + i}`,
    address: '',
  }));
}
