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
  /** This process runs without a supervisor, so the call cannot do what it asks. */
  | 'ERR_NOT_SUPERVISED'
  /** A generation does not speak Baton's protocol (it does not use the SDK or the preload). */
  | 'ERR_NO_PROTOCOL'
  /** The supervisor closed the channel: it is gone or the generation was cut off. */
  | 'ERR_SUPERVISOR_GONE'
  /** An unexpected failure inside a handler (a bug): the message says what. */
  | 'ERR_INTERNAL'
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
  | 'ERR_DISK_SPACE'
  | 'ERR_UPGRADING'
  | 'ERR_UPGRADE_FAILED'
  /** A canary window rolled the reload back (or `baton rollback`/`promote` found none to act on). */
  | 'ERR_ROLLED_BACK'
  | 'ERR_NO_CANARY'
  | 'ERR_NO_PREVIOUS'
  | 'ERR_ILLEGAL_TRANSITION'
  | 'ERR_STOPPED_ACCEPTING';

/** Every published code, for checking one that came over the wire (the compiler keeps it complete). */
const ERROR_CODES: Record<ErrorCode, true> = {
  ERR_CONFIG: true,
  ERR_USAGE: true,
  ERR_READY_TIMEOUT: true,
  ERR_GENERATION_EXITED: true,
  ERR_RELOAD_FAILED: true,
  ERR_RELOAD_SUPERSEDED: true,
  ERR_SHUTTING_DOWN: true,
  ERR_PROTOCOL: true,
  ERR_PROTOCOL_VERSION: true,
  ERR_NOT_SUPERVISED: true,
  ERR_NO_PROTOCOL: true,
  ERR_SUPERVISOR_GONE: true,
  ERR_INTERNAL: true,
  ERR_LISTENER: true,
  ERR_CONTROL: true,
  ERR_CONTROL_UNREACHABLE: true,
  ERR_PEER_REJECTED: true,
  ERR_BAD_REQUEST: true,
  ERR_NATIVE_LOAD: true,
  ERR_PACKAGE: true,
  ERR_INSTANCE_RUNNING: true,
  ERR_CRASH_LOOP: true,
  ERR_STATS: true,
  ERR_STATS_INCOMPATIBLE: true,
  ERR_TIMEOUT: true,
  ERR_MEMORY_LIMIT: true,
  ERR_DISK_SPACE: true,
  ERR_UPGRADING: true,
  ERR_UPGRADE_FAILED: true,
  ERR_ROLLED_BACK: true,
  ERR_NO_CANARY: true,
  ERR_NO_PREVIOUS: true,
  ERR_ILLEGAL_TRANSITION: true,
  ERR_STOPPED_ACCEPTING: true,
};

/**
 * Marks Baton's errors across copies of this module: two installed copies of the package (or an
 * ESM and a CommonJS load of it) have two BatonError classes, and `instanceof` must hold for both.
 */
const BRAND = Symbol.for('baton.error');

/** Base class of every error Baton raises on purpose: `code` is stable, `cause` is kept. */
export class BatonError extends Error {
  readonly code: ErrorCode;
  /** The operating system's errno name (`EADDRINUSE`) when a system call is the cause. */
  readonly errno?: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; errno?: string }) {
    super(message, options);
    this.name = 'BatonError';
    this.code = code;
    const errno = options?.errno ?? errnoOf(options?.cause);
    if (errno !== undefined) this.errno = errno;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses (an HTTP refusal, say) keep the ordinary prototype check: only the base class is branded.
    if (this !== BatonError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** True when `err` is a BatonError (of any installed copy), optionally of the given code. */
export function isBatonError(err: unknown, code?: ErrorCode): err is BatonError {
  return err instanceof BatonError && (code === undefined || err.code === code);
}

/** True when `code` is one of Baton's published codes (not an errno name, not an app's own). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** The errno name an error carries: Node's system errors and Baton's native addon put it in `code`. */
function errnoOf(cause: unknown): string | undefined {
  if (typeof cause !== 'object' || cause === null) return undefined;
  const { code, errno } = cause as { code?: unknown; errno?: unknown };
  if (typeof errno === 'string') return errno;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}
