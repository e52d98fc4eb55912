/** Stable error codes. A code, once published, keeps its meaning. */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_USAGE'
  | 'ERR_READY_TIMEOUT'
  | 'ERR_GENERATION_EXITED'
  | 'ERR_RELOAD_FAILED'
  | 'ERR_RELOAD_SUPERSEDED'
  | 'ERR_SHUTTING_DOWN'
  | 'ERR_PROTOCOL'
  | 'ERR_PROTOCOL_VERSION'
  | 'ERR_NOT_SUPERVISED'
  | 'ERR_LISTENER'
  | 'ERR_CONTROL'
  | 'ERR_CONTROL_UNREACHABLE'
  | 'ERR_PEER_REJECTED'
  | 'ERR_BAD_REQUEST'
  | 'ERR_NATIVE_LOAD'
  | 'ERR_PACKAGE'
  | 'ERR_INSTANCE_RUNNING'
  | 'ERR_CRASH_LOOP'
  | 'ERR_STATS'
  | 'ERR_STATS_INCOMPATIBLE'
  | 'ERR_TIMEOUT'
  | 'ERR_MEMORY_LIMIT'
  | 'ERR_UPGRADING'
  | 'ERR_UPGRADE_FAILED';

/** Base class of every error Baton raises on purpose: `code` is stable, `cause` is kept. */
export class BatonError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BatonError';
    this.code = code;
  }
}

/** True when `err` is a BatonError, optionally of the given code. */
export function isBatonError(err: unknown, code?: ErrorCode): err is BatonError {
  return err instanceof BatonError && (code === undefined || err.code === code);
}
