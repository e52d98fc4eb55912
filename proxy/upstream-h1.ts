/**
 * The upstream client of requests without a body over plain TCP or a Unix socket (nearly every
 * request a proxy forwards): keep-alive HTTP/1.1 connections of one endpoint, each with Node's
 * own llhttp parser (the one node:http's client uses), the request head written as one string.
 * It does what undici's Pool did for these requests — at about half the CPU per request, which
 * is most of what the proxy spent (README, bench:proxy). Requests with a body and TLS upstreams
 * still go through undici (streaming a body up under flow control, TLS sessions).
 *
 * Errors carry undici's codes (UND_ERR_HEADERS_TIMEOUT, UND_ERR_CONNECT_TIMEOUT, UND_ERR_SOCKET)
 * or the socket's and parser's (ECONNREFUSED, HPE_…), so answers and retries are decided the same
 * way for both clients (responses.ts).
 */
import net from 'node:net';
import type { Endpoint } from './endpoint.ts';
import { HTTPParser, kOnBody, kOnHeaders, kOnHeadersComplete, kOnMessageComplete, type HTTPParserClass, type HTTPParserInstance } from './http1-parser.ts';
import type { ClusterStats } from './proxy-stats.ts';
import { ReadBuffers } from './upstream-read.ts';

/** What one exchange tells its caller; the callbacks mirror undici's dispatch handler. */
export interface ExchangeHandler {
  /** Status ≥ 200, the raw `[name, value, …]` header list as the upstream sent it. */
  onHead(status: number, statusMessage: string, headers: string[]): void;
  /**
   * False: stop reading until `resume()`. `borrowed`: `chunk` is a view of the connection's read
   * buffer, valid until `readDone` returns (given only to a handler that has `readDone`).
   */
  onData(chunk: Buffer, borrowed: boolean): boolean;
  /**
   * After each read that gave the handler something: true when the handler (or the socket it
   * wrote to) still holds a borrowed chunk, so that buffer is not read into again. Without it,
   * every chunk is the handler's own copy.
   */
  readDone?(): boolean;
  onEnd(trailers: string[] | undefined): void;
  /** Before onHead or in the middle of the body; `err.code` says what (see the file's comment). */
  onError(err: NodeJS.ErrnoException): void;
}

/** One request on the connection a pool lends it: abort() cuts it, resume() after onData said false. */
export interface Exchange {
  abort(): void;
  resume(): void;
}

export interface H1PoolOptions {
  connectTimeout: number;
  /** Longest an idle connection is kept (the upstream's own `Keep-Alive: timeout` may make it shorter). */
  idleTimeout: number;
}

const RESOURCE = {};

/**
 * The Content-Length of an answer whose body onRead may cut itself: one length and no
 * Transfer-Encoding (llhttp has refused a bad or conflicting one by then); -1 otherwise.
 */
function framedLength(raw: readonly string[]): number {
  let length = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      if (length !== -1) return -1;
      length = Number(raw[i + 1]!.trim());
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return -1;
  }
  return Number.isSafeInteger(length) && length >= 0 ? length : -1;
}

function codedError(message: string, code: string): NodeJS.ErrnoException {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

const SEND_LENGTH = new Set(['POST', 'PUT', 'PATCH']);

/** Keep-alive connections to one endpoint; a connection serves one request at a time. */
export class H1Pool {
  private readonly endpoint: Endpoint;
  private readonly options: H1PoolOptions;
  private readonly stats: ClusterStats;
  private readonly defaultHost: string;
  private readonly idle: H1Connection[] = [];
  private readonly all = new Set<H1Connection>();
  private closing = false;
  private closed: (() => void) | undefined;

  constructor(endpoint: Endpoint, options: H1PoolOptions, stats: ClusterStats) {
    this.endpoint = endpoint;
    this.options = options;
    this.stats = stats;
    this.defaultHost = endpoint.kind === 'unix' ? 'localhost' : endpoint.key;
  }

  /**
   * Sends `method path` with `headers` (flat, as upstreamRequestHeaders makes them) and no body
   * on an idle connection, or a new one. `headersTimeout`: ms for the response head; `bodyTimeout`:
   * ms a body may go silent (0: no limit).
   */
  request(method: string, path: string, headers: readonly string[], headersTimeout: number, bodyTimeout: number, handler: ExchangeHandler): Exchange {
    let head = `${method} ${path} HTTP/1.1\r\n`;
    let host = false;
    let length = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 4 && name.toLowerCase() === 'host') host = true;
      else if (name.length === 14 && name.toLowerCase() === 'content-length') length = true;
      head += `${name}: ${headers[i + 1]!}\r\n`;
    }
    // As undici did: a Host when the client sent none (HTTP/1.0), a zero length where a body is expected.
    if (!host) head += `host: ${this.defaultHost}\r\n`;
    if (!length && SEND_LENGTH.has(method)) head += 'content-length: 0\r\n';
    head += 'connection: keep-alive\r\n\r\n';
    const conn = this.idle.pop() ?? this.connect();
    conn.start(head, method === 'HEAD', headersTimeout, bodyTimeout, handler);
    return conn;
  }

  private connect(): H1Connection {
    const e = this.endpoint;
    let conn: H1Connection | undefined = undefined;
    // Not Node's default of a new 64 KiB buffer per read: see upstream-read.ts. The generator is
    // called once inside net.connect (before `conn` exists) and then after every read.
    const buffers = new ReadBuffers();
    const onread = {
      buffer: () => buffers.next(),
      callback: (n: number, buf: Uint8Array): boolean => {
        conn!.onRead(buf as Buffer, n);
        return true;
      },
    };
    const socket = e.kind === 'unix' ? net.connect({ path: e.path, onread }) : net.connect({ host: e.host, port: e.port, noDelay: true, onread });
    conn = new H1Connection(this, socket, this.options.connectTimeout, buffers);
    this.all.add(conn);
    return conn;
  }

  /** @internal A connection got its socket. */
  connected(): void {
    this.stats.cxTotal.inc();
    this.stats.cxActive.inc();
  }

  /** @internal A connection's socket closed (`wasConnected`: it had counted as active). */
  gone(conn: H1Connection, wasConnected: boolean, connectFailed: boolean): void {
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    if (wasConnected) this.stats.cxActive.dec();
    if (connectFailed) this.stats.cxConnectFail.inc();
    if (this.closing && this.all.size === 0) this.closed?.();
  }

  /** @internal A connection finished its exchange and may serve another for `keepFor` ms. */
  park(conn: H1Connection, keepFor: number): void {
    if (this.closing || keepFor <= 0) return conn.destroy();
    conn.idleFor(keepFor);
    this.idle.push(conn);
  }

  get idleTimeout(): number {
    return this.options.idleTimeout;
  }

  /** Idle connections close now, busy ones after their response (`force`: all now); resolves once none is left. */
  close(force = false): Promise<void> {
    this.closing = true;
    for (const conn of [...(force ? this.all : this.idle)]) conn.destroy();
    if (this.all.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.closed = resolve));
  }
}

/** One upstream connection and its parser. */
class H1Connection implements Exchange {
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
  private pending: string[] | undefined;
  private connected = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private idle = false;
  private dead = false;
  private connectFailed = false;

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
    parser[kOnMessageComplete] = () => this.onMessageComplete();
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
    socket.on('timeout', () => this.fail(codedError(this.inBody ? 'body timeout' : 'headers timeout', this.inBody ? 'UND_ERR_BODY_TIMEOUT' : 'UND_ERR_HEADERS_TIMEOUT')));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(err));
    socket.on('close', () => {
      this.fail(codedError('other side closed', 'UND_ERR_SOCKET'));
      this.parser.close();
      this.pool.gone(this, this.connected, !this.connected && this.connectFailed);
    });
  }

  start(head: string, isHead: boolean, headersTimeout: number, bodyTimeout: number, handler: ExchangeHandler): void {
    this.idle = false;
    this.handler = handler;
    this.isHead = isHead;
    this.headersTimeout = headersTimeout;
    this.bodyTimeout = bodyTimeout;
    this.inBody = false;
    this.keepFor = this.pool.idleTimeout;
    this.socket.setTimeout(headersTimeout);
    this.socket.write(head, 'latin1');
  }

  idleFor(ms: number): void {
    this.idle = true;
    this.socket.setTimeout(ms);
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
    const lend = handler.readDone !== undefined && this.buffers.isOwn(buffer);
    let at = 0;
    while (at < n && this.handler) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - at);
        const view = buffer.subarray(at, at + take);
        at += take;
        this.remaining -= take;
        if (!this.handler.onData(lend ? view : Buffer.from(view), lend)) this.socket.pause();
        if (this.remaining > 0) continue;
        this.onMessageComplete();
        // Bytes after the answer answer nothing that was asked (one request at a time per connection).
        if (at < n) this.fail(codedError('bytes after the end of the answer', 'UND_ERR_SOCKET'));
        break;
      }
      const r = this.parser.execute(at === 0 ? buffer.subarray(0, n) : buffer.subarray(at, n));
      if (r instanceof Error) return this.fail(r as NodeJS.ErrnoException);
      // The parser stopped at the end of a head whose body is ours to cut (onHeadersComplete returned 2).
      if (this.remaining < 0) break;
      at += r;
      // Fresh for the next answer: after that stop llhttp is not at a message start.
      this.parser.initialize((HTTPParser as HTTPParserClass).RESPONSE, RESOURCE, 0, 0);
    }
    if (handler.readDone?.() && lend) this.buffers.lend();
  }

  private onHeadersComplete(headers: string[] | undefined, status: number, statusMessage: string, upgrade: boolean, shouldKeepAlive: boolean): number {
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
      if (name.length === 10 && name.toLowerCase() === 'keep-alive') {
        // `timeout=N`: the upstream closes an idle connection after N s; give it back a second early.
        const m = /timeout=(\d+)/i.exec(all[i + 1]!);
        if (m) this.keepFor = Math.min(this.keepFor, Number(m[1]) * 1000 - 1000);
      }
    }
    this.inBody = true;
    this.socket.setTimeout(this.bodyTimeout);
    const length = this.isHead || status === 204 || status === 304 ? -1 : framedLength(all);
    this.buffers.expect(length);
    handler.onHead(status, statusMessage, all);
    if (this.isHead) return 1;
    if (length <= 0) return 0;
    // Skip the body and stop as after an upgrade (the parser then reports the message complete: ignored, remaining > 0).
    this.remaining = length;
    return 2;
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
