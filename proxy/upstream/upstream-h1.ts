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
import { performance } from 'node:perf_hooks';
import type { Endpoint } from './endpoint.ts';
import { isFieldName } from '../http/field-name.ts';
import type { ClusterStats } from '../telemetry/proxy-stats.ts';
import { H1Connection } from './upstream-h1-connection.ts';
import { ReadBuffers } from './upstream-read.ts';

/** What one exchange tells its caller; the callbacks mirror undici's dispatch handler. */
export interface ExchangeHandler {
  /** Status ≥ 200, the raw `[name, value, …]` header list as the upstream sent it; `at`: performance.now() of the read it came in. */
  onHead(status: number, statusMessage: string, headers: string[], at: number): void;
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

const SEND_LENGTH = new Set(['POST', 'PUT', 'PATCH']);

/** The head H1Pool#request sends for `headers` (flat); `defaultHost` when they have no Host. */
export function requestHeadOf(method: string, path: string, headers: readonly string[], defaultHost: string): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let host = false;
  let length = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (isFieldName(name, 'host')) host = true;
    else if (isFieldName(name, 'content-length')) length = true;
    head += `${name}: ${headers[i + 1]!}\r\n`;
  }
  // As undici did: a Host when the client sent none (HTTP/1.0), a zero length where a body is expected.
  if (!host) head += `host: ${defaultHost}\r\n`;
  if (!length && SEND_LENGTH.has(method)) head += 'content-length: 0\r\n';
  return `${head}connection: keep-alive\r\n\r\n`;
}

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
    return this.send(requestHeadOf(method, path, headers, this.defaultHost), method === 'HEAD', headersTimeout, bodyTimeout, handler);
  }

  /**
   * Sends a whole request head (upstreamRequestHead's, or request()'s) as request() does; `isHead`:
   * a HEAD request; `now`: performance.now() the caller took when the request began, if it did.
   */
  send(head: string, isHead: boolean, headersTimeout: number, bodyTimeout: number, handler: ExchangeHandler, now = performance.now()): Exchange {
    const conn = this.idle.pop() ?? this.connect();
    conn.start(head, isHead, headersTimeout, bodyTimeout, handler, now);
    return conn;
  }

  /** The Host a request without one is sent with. */
  get hostField(): string {
    return this.defaultHost;
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
