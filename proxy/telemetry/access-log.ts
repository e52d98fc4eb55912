/** The access log: one pino JSON line per request or stream. */
import { pino, type Logger } from 'pino';

export interface AccessEntry {
  listener: string;
  method?: string;
  path?: string;
  status?: number;
  /** Response body bytes sent downstream (TCP: bytes sent downstream). */
  bytes: number;
  /** Bytes received from downstream (TCP streams). */
  bytes_in?: number;
  duration_ms: number;
  upstream?: string;
  cluster?: string;
  request_id?: string;
  error?: string;
}

export interface AccessLog {
  /** False when the log is off: a caller on a hot path skips building the entry. */
  readonly enabled: boolean;
  log(entry: AccessEntry): void;
  flush(): void;
}

export function createAccessLog(config: { enabled: boolean; path: string }, generation: number): AccessLog {
  if (!config.enabled) return { enabled: false, log() {}, flush() {} };
  const fd = config.path === 'stdout' ? 1 : config.path === 'stderr' ? 2 : undefined;
  const destination = pino.destination({ ...(fd !== undefined ? { fd } : { dest: config.path, mkdir: true }), sync: false });
  const logger: Logger = pino({ base: { pid: process.pid, generation }, messageKey: 'msg' }, destination);
  return {
    enabled: true,
    log(entry) {
      logger.info(entry, 'access');
    },
    flush() {
      destination.flushSync();
    },
  };
}
