/**
 * One connection of the lean upstream client (upstream-h1.ts): its socket, its llhttp parser in
 * RESPONSE mode, the timeouts of one exchange at a time, and the bodies framed by Content-Length
 * that it cuts out of its reads itself (upstream-read.ts says why and into which buffer).
 */
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Deadline } from '../http/deadline.ts';
import { isFieldName } from '../http/field-name.ts';
import { framedLength, headEnd, HTTPParser, kOnBody, kOnHeaders, kOnHeadersComplete, kOnMessageComplete, type HTTPParserClass, type HTTPParserInstance } from '../http/http1-parser.ts';
import type { Exchange, ExchangeHandler, H1Pool } from './upstream-h1.ts';
import { copyOf, type ReadBuffers } from './upstream-read.ts';

const RESOURCE = {};

let keepAliveValue = '';
let keepAliveMs = Infinity;
/**
 * How long a connection may idle by the upstream's `Keep-Alive: timeout=N` (it closes an idle
 * connection after N s; given back a second early), Infinity without one. An upstream sends the
 * same value every time: the last one's answer is kept instead of running the RegExp per response.
 */
function keepAliveFor(value: string): number {
  if (value !== keepAliveValue) {
    const m = /timeout=(\d+)/i.exec(value);
    keepAliveMs = m ? Number(m[1]) * 1000 - 1000 : Infinity;
    keepAliveValue = value;
  }
  return keepAliveMs;
}

function codedError(message: string, code: string): NodeJS.ErrnoException {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

/** One upstream connection and its parser. */
export class H1Connection implements Exchange {
  private readonly pool: H1Pool;
  private readonly socket: net.Socket;
  private readonly parser: HTTPParserInstance;
  private handler: ExchangeHandler | undefined;
  private isHead = false;
  private headersTimeout = 0;
  private bodyTimeout = 0;
  /** Between the head and the end of the body. */
  private inBody = false;
  private keepAlive = false;
  private keepFor = 0;
  private informational = false;
  /** Body bytes of a Content-Length answer still to come, cut from the reads by onRead (not the parser); -1: none. */
  private remaining = -1;
  private readonly buffers: ReadBuffers;
  /** The parser is at a message start; `exact`: it is being given one head and nothing after it. */
  private atStart = true;
  private exact = false;
  /** Node's parser handed the fields through kOnHeaders (over 32): it does so until initialize(). */
  private flushed = false;
  /** performance.now() at the start of the read being handled: the deadlines and the head's time count from it. */
  private now = 0;
  private pending: string[] | undefined;
  private connected = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private idle = false;
  private dead = false;
  private connectFailed = false;
  /** Headers (from the request), body (idle between reads) or pool idle: deadline.ts, not socket.setTimeout per phase. */
  private readonly deadline = new Deadline(() => this.timedOut());
  private readonly onComplete = (): void => {
    // A head given whole completes only at its own end: the parser is at the next message.
    if (this.exact) this.atStart = true;
    this.onMessageComplete();
  };

  constructor(pool: H1Pool, socket: net.Socket, connectTimeout: number, buffers: ReadBuffers) {
    this.pool = pool;
    this.socket = socket;
    this.buffers = buffers;
    // H1Pool is made only where leanClientAvailable (cluster.ts).
    const Parser = HTTPParser as HTTPParserClass;
    const parser = new Parser();
    parser.initialize(Parser.RESPONSE, {}, 0, 0);
    this.parser = parser;
    parser[kOnHeaders] = (headers: string[]) => {
      (this.pending ??= []).push(...headers);
    };
    parser[kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, statusMessage: string, upgrade: boolean, shouldKeepAlive: boolean) =>
      this.onHeadersComplete(headers, status, statusMessage, upgrade, shouldKeepAlive);
    // Chunked and close-delimited bodies: the parser's chunks are copies, the handler's own.
    parser[kOnBody] = (chunk: Buffer) => {
      if (this.handler && !this.handler.onData(chunk, false)) this.socket.pause();
    };
    parser[kOnMessageComplete] = this.onComplete;
    this.connectTimer = setTimeout(() => this.fail(codedError('connect timeout', 'UND_ERR_CONNECT_TIMEOUT')), connectTimeout);
    socket.once('connect', () => {
      clearTimeout(this.connectTimer);
      this.connected = true;
      pool.connected();
    });
    socket.on('end', () => {
      // A body delimited by the end of the connection ends here; anything else is a cut.
      if (this.handler) {
        const r = this.parser.finish();
        if (r instanceof Error) return this.fail(r as NodeJS.ErrnoException);
      }
      this.fail(codedError('other side closed', 'UND_ERR_SOCKET'));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(err));
    socket.on('close', () => {
      this.deadline.clear();
      this.fail(codedError('other side closed', 'UND_ERR_SOCKET'));
      this.parser.close();
      this.pool.gone(this, this.connected, !this.connected && this.connectFailed);
    });
  }

  /** `now`: performance.now() when the request was made (the headers deadline starts there). */
  start(head: string, isHead: boolean, headersTimeout: number, bodyTimeout: number, handler: ExchangeHandler, now: number): void {
    this.idle = false;
    this.handler = handler;
    this.isHead = isHead;
    this.headersTimeout = headersTimeout;
    this.bodyTimeout = bodyTimeout;
    this.inBody = false;
    this.keepFor = this.pool.idleTimeout;
    // From the request on, as undici's headersTimeout (the whole head, not the silence between its reads).
    this.deadline.setFrom(now, headersTimeout);
    this.socket.write(head, 'latin1');
  }

  /** From the read that ended the answer (park() is called from onRead only: finish() at EOF never keeps the connection). */
  idleFor(ms: number): void {
    this.idle = true;
    this.deadline.setFrom(this.now, ms);
  }

  abort(): void {
    this.handler = undefined;
    this.destroy();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.handler = undefined;
    this.socket.destroy();
  }

  /**
   * @internal `n` bytes read into `buffer` (upstream-read.ts: the connection's own, which may be
   * lent to the handler, or the shared one, which is parsed before the next read and never lent).
   */
  onRead(buffer: Buffer, n: number): void {
    const handler = this.handler;
    if (!handler) {
      // Bytes on an idle connection answer nothing that was asked: it cannot be trusted again.
      this.destroy();
      return;
    }
    const now = (this.now = performance.now());
    const lend = handler.readDone !== undefined && this.buffers.isOwn(buffer);
    let at = 0;
    while (at < n && this.handler) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - at);
        const chunk = lend ? buffer.subarray(at, at + take) : copyOf(buffer, at, take);
        at += take;
        this.remaining -= take;
        if (!this.handler.onData(chunk, lend)) this.socket.pause();
        if (this.remaining > 0) continue;
        this.onMessageComplete();
        // Bytes after the answer answer nothing that was asked (one request at a time per connection).
        if (at < n) this.fail(codedError('bytes after the end of the answer', 'UND_ERR_SOCKET'));
        break;
      }
      // A head that starts in this read goes to the parser alone: a body cut here then leaves it at the next message.
      const end = this.atStart ? headEnd(buffer, at, n) : -1;
      const exact = (this.exact = end !== -1);
      this.atStart = false;
      const r = this.parser.execute(buffer.subarray(at, exact ? end : n));
      this.exact = false;
      if (r instanceof Error) return this.fail(r as NodeJS.ErrnoException);
      if (this.remaining < 0) {
        if (!exact || (at = end) === n) break;
        // After an answer that ended at its head, the parser takes the rest in one go, as before.
        if (!this.handler && !this.dead) {
          const rest = this.parser.execute(buffer.subarray(at, n));
          if (rest instanceof Error) return this.fail(rest as NodeJS.ErrnoException);
        }
        continue;
      }
      at += r;
      this.parser[kOnMessageComplete] = this.onComplete;
      this.atStart = true;
      // Stopped as after an upgrade, llhttp is not at a message start (nor, fields flushed, on its fast path).
      if (!exact || this.flushed) {
        this.flushed = false;
        this.parser.initialize((HTTPParser as HTTPParserClass).RESPONSE, RESOURCE, 0, 0);
      }
    }
    // Body bytes (or the head before them): the body's idle deadline starts again. A head's do not move the headers deadline.
    if (this.inBody && this.handler) this.deadline.setFrom(now, this.bodyTimeout);
    if (handler.readDone?.() && lend) this.buffers.lend();
  }

  private onHeadersComplete(headers: string[] | undefined, status: number, statusMessage: string, upgrade: boolean, shouldKeepAlive: boolean): number {
    if (headers === undefined && this.pending !== undefined) this.flushed = true;
    const all = headers ?? this.pending ?? [];
    this.pending = undefined;
    const handler = this.handler;
    if (!handler) return 1;
    if (status < 200) {
      if (status === 101 || upgrade) {
        this.fail(codedError('an upgrade the request did not ask for', 'HPE_UNEXPECTED_UPGRADE'));
        return 1;
      }
      // 1xx (103 Early Hints …): not passed on, as before; the final response follows.
      this.informational = true;
      return 1;
    }
    this.keepAlive = shouldKeepAlive;
    for (let i = 0; i < all.length; i += 2) {
      const name = all[i]!;
      if (isFieldName(name, 'keep-alive')) this.keepFor = Math.min(this.keepFor, keepAliveFor(all[i + 1]!));
    }
    this.inBody = true;
    const length = this.isHead || status === 204 || status === 304 ? -1 : framedLength(all);
    this.buffers.expect(length);
    handler.onHead(status, statusMessage, all, this.now);
    if (this.isHead) return 1;
    if (length <= 0) return 0;
    // The parser skips the body: as if it had none when given the head alone, else stopping as after
    // an upgrade. Its message complete means nothing here: without a hook it makes no call into JS.
    this.parser[kOnMessageComplete] = undefined;
    this.remaining = length;
    return this.exact ? 1 : 2;
  }

  private onMessageComplete(): void {
    if (this.remaining > 0) return;
    this.remaining = -1;
    if (this.informational) {
      this.informational = false;
      return;
    }
    const handler = this.handler;
    if (!handler) return;
    const trailers = this.pending;
    this.pending = undefined;
    this.handler = undefined;
    this.inBody = false;
    if (this.keepAlive) {
      // Paused for the last chunk's backpressure: the body is over, the next bytes are the next response.
      this.socket.resume();
      this.pool.park(this, this.keepFor);
    } else this.destroy();
    handler.onEnd(trailers);
  }

  private timedOut(): void {
    this.fail(codedError(this.inBody ? 'body timeout' : 'headers timeout', this.inBody ? 'UND_ERR_BODY_TIMEOUT' : 'UND_ERR_HEADERS_TIMEOUT'));
  }

  private fail(err: NodeJS.ErrnoException): void {
    if (this.dead) return;
    if (!this.connected && this.handler) this.connectFailed = true;
    const handler = this.handler;
    this.handler = undefined;
    if (handler || this.idle || !this.connected) {
      this.dead = true;
      clearTimeout(this.connectTimer);
      this.socket.destroy();
    }
    handler?.onError(err);
  }
}
