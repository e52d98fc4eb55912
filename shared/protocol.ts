/**
 * The supervisor ↔ generation protocol (and the supervisor ↔ successor hand-over), carried as JSON
 * over Node's built-in IPC channel.
 * Descriptors never travel in JSON: a message with `fds > 0` announces that exactly that many
 * descriptors were sent just before it on the generation's SCM_RIGHTS channel.
 */

import { BatonError, isErrorCode, type ErrorCode } from './errors.ts';
import type { ChildTiming } from './reload-timing.ts';
import type { SharedValue } from './shared-value.ts';

/**
 * Bumped on any incompatible change. Checked once, at `hello` (and by the SDK against the
 * BATON_PROTOCOL it was launched with): a generation speaking another version is refused there,
 * so no later message needs a check, and two versions never trade error replies.
 */
export const PROTOCOL_VERSION = 1;

/** Bumped on any incompatible change to the state a supervisor hands its successor (BATON_UPGRADE). */
export const HANDOVER_VERSION = 1;

interface Envelope {
  /** Protocol version; also what tells Baton's messages apart from an app's own `process.send`. */
  baton: number;
  /** Sender-local sequence number; a reply carries it back in `ack`. */
  seq: number;
  /** Descriptors that travel with this message on the SCM_RIGHTS channel. */
  fds?: number;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** The errno name (`EADDRINUSE`) when a system call failed on the other side. */
  errno?: string;
}

/** Child → supervisor. */
export type ChildMessage =
  | (Envelope & { type: 'hello'; pid: number; runtime: string; /** The stats layout version the child's code writes. */ statsLayout?: number })
  /** `timing`: the SDK's start-up marks (absent from an older SDK), for the reload's breakdown. */
  | (Envelope & { type: 'ready'; timing?: ChildTiming })
  | (Envelope & { type: 'connections'; open: number })
  | (Envelope & { type: 'listen'; address: string })
  | (Envelope & { type: 'drained' })
  /** The shared TLS session ticket key; the ack carries `key` (48 bytes, base64) and `expiresAt` (epoch ms). */
  | (Envelope & { type: 'ticket-key'; /** A new key is made once the current one is this old (ms). */ rotateEvery: number })
  /** Reload the program (the active generation only); the ack comes with the outcome: `generation`, or the error. */
  | (Envelope & { type: 'reload'; reason: string })
  /**
   * Sets `key` for every worker of this generation, the sender included, and for any that starts
   * later in it (the `hello` ack carries them as `shared`); the ack comes once every worker has
   * acknowledged its `share`, with how many did (`workers`).
   */
  | (Envelope & { type: 'share'; key: string; value: SharedValue })
  | (Envelope & { type: 'ack'; ack: number; ok: true } & Record<string, unknown>)
  | (Envelope & { type: 'ack'; ack: number; ok: false; error: ErrorBody });

/** Supervisor → child. */
export type SupervisorMessage =
  | (Envelope & { type: 'drain'; deadline: number })
  /** Stop accepting but keep running (a canary window): the ack carries `listeners`, how many servers stopped. */
  | (Envelope & { type: 'park' })
  /** Accept again (a rollback): the generation asks for each socket with `listen`; the ack comes once all listen. */
  | (Envelope & { type: 'unpark' })
  /** Too many generations drain: close idle connections now, busy ones after their response; the ack carries `cut`. */
  | (Envelope & { type: 'hurry' })
  /** Release what memory it can (GC, malloc_trim); the ack reports what was released. */
  | (Envelope & { type: 'release-memory' })
  /** Write a heap snapshot into `dir` (`onDrain`: once this generation has drained, just before it exits); the ack carries its `path`. */
  | (Envelope & { type: 'heap-snapshot'; dir: string; onDrain?: boolean })
  /** Record a sampling heap profile for `seconds`, write it into `dir`; the ack carries its `path`. */
  | (Envelope & { type: 'heap-profile'; dir: string; seconds: number })
  /** Record a CPU profile for `seconds`, write it into `dir`; the ack carries its `path`. */
  | (Envelope & { type: 'cpu-profile'; dir: string; seconds: number })
  /** A worker of this generation (perhaps this one) set `key`: hold `value` from now on, then ack. */
  | (Envelope & { type: 'share'; key: string; value: SharedValue })
  | (Envelope & { type: 'ack'; ack: number; ok: true } & Record<string, unknown>)
  | (Envelope & { type: 'ack'; ack: number; ok: false; error: ErrorBody });

/**
 * A supervisor and the successor `baton upgrade` starts, over the IPC channel between them.
 * The predecessor's ack to `successor-ready` means it has released the control socket and its
 * generations drain: the successor takes over.
 */
export type HandOverMessage =
  | (Envelope & { type: 'successor-ready'; pid: number; generation: number })
  | (Envelope & { type: 'ack'; ack: number; ok: true } & Record<string, unknown>)
  | (Envelope & { type: 'ack'; ack: number; ok: false; error: ErrorBody });

/**
 * A process booted ahead of its generation (`standby: true`) and the supervisor, before the SDK
 * runs: the standby preload says `standby` once it waits, and `standby-go` hands it the
 * generation's own environment (BATON_*, LISTEN_*, NOTIFY_SOCKET) and lets it import the app.
 */
export type StandbyMessage =
  | (Envelope & { type: 'standby' })
  | (Envelope & { type: 'standby-go'; env: Record<string, string> });

export type Message = ChildMessage | SupervisorMessage | HandOverMessage | StandbyMessage;
export type MessageType<M extends Message> = M['type'];
export type MessageOf<M extends Message, T extends M['type']> = Extract<M, { type: T }>;

/** A message body as written by a sender, before the envelope is added. */
export type Outgoing<M extends Message> = M extends Message ? Omit<M, 'baton' | 'seq'> : never;

/**
 * A handler for every message type of `M` (the compiler rejects a table that misses one).
 * A handler returns the reply body for the sender's `ack`, or undefined when none is owed.
 */
export type Handlers<M extends Message, C> = {
  [T in M['type']]: (message: MessageOf<M, T>, context: C) => ReplyBody | undefined | Promise<ReplyBody | undefined>;
};

export type ReplyBody = { ok: true; [key: string]: unknown } | { ok: false; error: ErrorBody };

/** True when `value` is a Baton protocol message of any version (an app may use the same channel). */
export function isEnvelope(value: unknown): value is Envelope & { type: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Envelope).baton === 'number' &&
    typeof (value as Envelope).seq === 'number' &&
    typeof (value as { type?: unknown }).type === 'string'
  );
}

/** The reply to a message whose type the receiver does not know. */
export function unrecognized(type: string): ReplyBody {
  return { ok: false, error: { code: 'ERR_PROTOCOL', message: `unrecognized message type '${type}'` } };
}

/** What a thrown error becomes on the wire: its code if it is one of Baton's, its errno kept. */
export function errorBody(err: unknown): ErrorBody {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; errno?: unknown; message?: unknown };
  const errno = typeof e.errno === 'string' ? e.errno : typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) ? e.code : undefined;
  return {
    code: isErrorCode(e.code) ? e.code : 'ERR_INTERNAL',
    message: typeof e.message === 'string' ? e.message : String(err),
    ...(errno !== undefined ? { errno } : {}),
  };
}

/** The error an `ok: false` reply stands for, with the code (and errno) the other side gave it. */
export function replyError(error: ErrorBody): BatonError {
  const code = isErrorCode(error.code) ? error.code : 'ERR_PROTOCOL';
  return new BatonError(code, error.message, error.errno !== undefined ? { errno: error.errno } : undefined);
}

/**
 * Runs the handler for `message` and returns the reply owed to the sender (if any): the handler's,
 * an "unrecognized" one for an unknown type, or an error reply when the handler throws. An `ack`
 * is never answered, whatever it says: two peers that disagree must not trade replies forever.
 * The version is checked at `hello` only (see PROTOCOL_VERSION).
 */
export async function dispatch<M extends Message, C>(
  handlers: Handlers<M, C>,
  message: Envelope & { type: string },
  context: C,
): Promise<ReplyBody | undefined> {
  const isAck = message.type === 'ack';
  if (message.type === 'hello' && message.baton !== PROTOCOL_VERSION) {
    return {
      ok: false,
      error: { code: 'ERR_PROTOCOL_VERSION', message: `protocol version ${message.baton} is not supported: expected ${PROTOCOL_VERSION}` },
    };
  }
  if (!Object.hasOwn(handlers, message.type)) return isAck ? undefined : unrecognized(message.type);
  const handler = handlers[message.type as M['type']] as (m: unknown, c: C) => ReturnType<Handlers<M, C>[M['type']]>;
  try {
    const reply = await handler(message, context);
    return isAck ? undefined : reply;
  } catch (err) {
    return isAck ? undefined : { ok: false, error: errorBody(err) };
  }
}

/** Numbers outgoing messages and matches replies to the requests that await them. */
export class Correlator {
  private nextSeq = 1;
  private readonly pending = new Map<number, { resolve: (r: ReplyBody) => void; reject: (e: Error) => void }>();

  /** Stamps `body` with the version and a fresh seq. */
  stamp<M extends Message>(body: Outgoing<M>): M {
    return { ...body, baton: PROTOCOL_VERSION, seq: this.nextSeq++ } as unknown as M;
  }

  /** The ack that answers message `seq` with `reply`: the one way every channel replies. */
  reply<M extends Message>(seq: number, reply: ReplyBody): M {
    return this.stamp<M>({ type: 'ack', ack: seq, ...reply } as unknown as Outgoing<M>);
  }

  /** Registers a wait for the ack of `seq`; settle it with `settle` or `failAll`. */
  expect(seq: number): Promise<ReplyBody> {
    return new Promise((resolve, reject) => this.pending.set(seq, { resolve, reject }));
  }

  /** Resolves the wait for `ack`; false when nothing waited for it. */
  settle(ack: number, reply: ReplyBody): boolean {
    const waiter = this.pending.get(ack);
    if (!waiter) return false;
    this.pending.delete(ack);
    waiter.resolve(reply);
    return true;
  }

  /** Rejects every pending wait (the channel closed). */
  failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }
}
