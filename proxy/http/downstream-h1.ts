/**
 * The lean downstream HTTP/1.1 path: a plain listener's connections are read by the proxy's own
 * loop on node:http's parser (llhttp, REQUEST mode) instead of node:http's server, whose
 * IncomingMessage, ServerResponse and stream machinery were ~12 µs of every request (README,
 * bench:proxy). It serves what nearly every proxied request is — a bodiless GET, HEAD, DELETE or
 * OPTIONS over HTTP/1.1, keep-alive or pipelined — through the same 'request' handler and SDK
 * hooks as node:http (lean-response.ts stands in for its request and response).
 *
 * Anything else — a body, Expect, Upgrade, HTTP/1.0 or /2, no Host, a head split across reads, bytes
 * llhttp refuses — hands the connection to node:http for the rest of its life at the request's first
 * byte: that request and all after it are node:http's, answered (400, 431, 408 …) exactly as before.
 */
import type http from 'node:http';
import type net from 'node:net';
import { Deadline } from './deadline.ts';
import { HTTPParser, kOnHeaders, kOnHeadersComplete, requestMethods, type HTTPParserClass, type HTTPParserInstance } from './http1-parser.ts';
import { LeanRequest, LeanResponse, type ResponseOwner } from './lean-response.ts';
import { leanHeaders } from './lean-request-fields.ts';
import { readInto, readIntoStream } from './socket-read-buffer.ts';

export interface LeanOptions {
  /** A new connection's first request head must come within this (node:http's headersTimeout: then 408). */
  headersTimeout: number;
  /** An idle keep-alive connection closes after this (node:http's keepAliveTimeout). */
  keepAliveTimeout: number;
  /** A request in flight whose connection is silent this long is cut (node:http's server.timeout). */
  streamIdleTimeout: number;
  maxHeaderSize: number;
  /** A connection was handed to node:http. */
  onHandOver?: () => void;
}

type ConnectionListener = (this: http.Server, socket: net.Socket) => void;

const LEAN_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);
/** Pipelined bytes held while a response is in flight before the socket stops being read. */
const MAX_QUEUED = 64 * 1024;
const RESOURCE = {};
const HEAD_END = Buffer.from('\r\n\r\n');
/** Where every lean connection reads (socket-read-buffer.ts), parsed before the next read; what is kept past a read is copied. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * Puts the lean path in front of `server`'s own connection listener (node:http's), which is kept
 * for the connections handed back; false (node:http serves everything) where this Node's parser
 * is not the one checked in http1-parser.ts or the server's listeners are not what node:http sets up.
 */
export function installLeanPath(server: http.Server, options: LeanOptions): boolean {
  const methods = requestMethods;
  if (!methods) return false;
  const own = server.listeners('connection');
  if (own.length !== 1) return false;
  const nodeListener = own[0] as ConnectionListener;
  server.removeListener('connection', nodeListener);
  // Not server.emit('connection') to hand a socket back: every other 'connection' listener (the
  // SDK's drain tracking, the listener's counters) has seen this socket once already.
  server.on('connection', (socket: net.Socket) => {
    new LeanConnection(server, nodeListener, socket, options, methods);
  });
  return true;
}

/** One downstream connection while the lean path serves it: one request at a time, in order. */
class LeanConnection implements ResponseOwner {
  readonly socket: net.Socket;
  readonly keepAliveTimeout: number;
  private readonly server: http.Server;
  private readonly nodeListener: ConnectionListener;
  private readonly options: LeanOptions;
  private readonly methods: readonly string[];
  private readonly parser: HTTPParserInstance;
  /** What the last execute() parsed: a request to serve, null for one the lean path does not take. */
  private parsed: LeanRequest | null | undefined = undefined;
  private keepAlive = false;
  /** llhttp is at a message start (no initialize() needed): after a request it parsed to its end itself. */
  private atStart = false;
  /** What headersComplete returns: 2 (stop at the end of the head) or 0 (parse on: the buffer is this one head). */
  private onHead = 2;
  private pendingHeaders: string[] | undefined = undefined;
  private pendingUrl = '';
  private current: LeanResponse | undefined = undefined;
  /** Bytes that came while `current` was in flight (pipelining), parsed once it has ended. */
  private queued: Buffer | undefined = undefined;
  private served = 0;
  private done = false;
  private readonly onData = (chunk: Buffer): void => this.data(chunk, true);
  /** Reads go into READ_BUFFER (false: 'data' events, each chunk our own). */
  private readonly shared: boolean;
  private readonly onEnd = (): void => this.ended();
  private readonly onError = (): void => {
    this.socket.destroy();
  };
  private readonly onClose = (): void => this.closed();
  private readonly onDrain = (): void => this.drained();
  /** Headers, stream idle or keep-alive, by phase (deadline.ts: no socket.setTimeout per request). */
  private readonly deadline = new Deadline(() => this.timedOut());
  /** The socket's writableLength when the stream-idle deadline last passed with a response in flight. */
  private unsentAtCheck = -1;

  constructor(server: http.Server, nodeListener: ConnectionListener, socket: net.Socket, options: LeanOptions, methods: readonly string[]) {
    this.server = server;
    this.nodeListener = nodeListener;
    this.socket = socket;
    this.options = options;
    this.methods = methods;
    this.keepAliveTimeout = options.keepAliveTimeout;
    // installLeanPath runs only where requestMethods (and so HTTPParser) exists.
    const parser = new (HTTPParser as HTTPParserClass)();
    parser[kOnHeaders] = (headers: string[], url: string) => {
      (this.pendingHeaders ??= []).push(...headers);
      this.pendingUrl += url;
    };
    parser[kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number, url: string, _s: unknown, _m: unknown, upgrade: boolean, shouldKeepAlive: boolean) =>
      this.headersComplete(major, minor, headers, method, url, upgrade, shouldKeepAlive);
    // No body or message-complete hooks: node's parser skips a hook that is not a function, where a
    // no-op was a call from C++ into JS for every request (its message ends at its head).
    this.parser = parser;
    this.shared = readInto(socket, READ_BUFFER, (n, buf) => {
      this.data(buf.subarray(0, n), false);
      return true;
    });
    if (!this.shared) socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    this.deadline.set(options.headersTimeout);
  }

  /**
   * Returns 2 (skip the body, stop as after an upgrade), so that execute() ends at this request's
   * last byte: that is how the next request's first byte is known, and so where a hand-over to
   * node:http starts. When the read is one head and nothing after it (parse), 0: llhttp ends the
   * bodiless message itself and stays at a message start, which spares the initialize() (and its
   * async-id reset) a stop needs.
   */
  private headersComplete(major: number, minor: number, headers: string[] | undefined, method: number, url: string, upgrade: boolean, shouldKeepAlive: boolean): number {
    const raw = headers ?? this.pendingHeaders ?? [];
    const target = url || this.pendingUrl;
    this.pendingHeaders = undefined;
    this.pendingUrl = '';
    const name = this.methods[method];
    this.parsed = major === 1 && minor === 1 && !upgrade && name !== undefined && LEAN_METHODS.has(name) && leanHeaders(raw) ? new LeanRequest(name, target, raw, this.socket) : null;
    this.keepAlive = shouldKeepAlive;
    return this.onHead;
  }

  /** `owned`: the chunk stays valid after this returns (not a view of READ_BUFFER). */
  private data(chunk: Buffer, owned: boolean): void {
    if (this.done) return;
    if (this.current !== undefined) {
      // Bytes moved: the stream-idle deadline starts again, as node:http's socket timeout would.
      this.deadline.set(this.options.streamIdleTimeout);
      this.queued = this.queued === undefined ? (owned ? chunk : Buffer.from(chunk)) : Buffer.concat([this.queued, chunk]);
      if (this.queued.length > MAX_QUEUED) this.socket.pause();
      return;
    }
    this.parse(chunk, owned);
  }

  /** Serves the requests in `buf` one after the other until one is in flight or the rest is node:http's. */
  private parse(buf: Buffer, owned: boolean): void {
    let offset = 0;
    while (offset < buf.length && !this.done) {
      this.parsed = undefined;
      // The common read: one whole head (a keep-alive client waiting for each answer). A lean
      // request has no body, so its message ends there; anything else is handed over from offset 0.
      const one = offset === 0 && buf.indexOf(HEAD_END) === buf.length - 4;
      // After a stop at the end of a head llhttp is not at a message start: it starts afresh.
      if (!one || !this.atStart) this.parser.initialize((HTTPParser as HTTPParserClass).REQUEST, RESOURCE, this.options.maxHeaderSize, 0);
      this.onHead = one ? 0 : 2;
      const n = this.parser.execute(offset === 0 ? buf : buf.subarray(offset));
      const req = this.parsed;
      this.atStart = one && req != null && n === buf.length;
      if (typeof n !== 'number' || !req) return this.handOver(owned ? buf.subarray(offset) : Buffer.from(buf.subarray(offset)));
      offset += n;
      this.serve(req);
      if (this.current !== undefined) {
        if (offset < buf.length) this.queued = owned ? buf.subarray(offset) : Buffer.from(buf.subarray(offset));
        return;
      }
    }
  }

  private serve(req: LeanRequest): void {
    this.served += 1;
    this.unsentAtCheck = -1;
    this.deadline.set(this.options.streamIdleTimeout);
    const res = new LeanResponse(req, this, this.keepAlive);
    this.current = res;
    // The server's own event: the SDK's drain and request stats see it first, then the proxy's handler.
    this.server.emit('request', req, res);
  }

  /** @internal LeanResponse#end: the next request may be served (after this one's bytes, on the same socket). */
  responseEnded(res: LeanResponse, last: boolean): void {
    if (res !== this.current) return;
    this.current = undefined;
    if (last) {
      this.done = true;
      this.queued = undefined;
      // node:http's destroySoon: the FIN after the last byte, then the socket is gone.
      (this.socket as net.Socket & { destroySoon(): void }).destroySoon();
      return;
    }
    this.deadline.set(this.keepAliveTimeout);
    const queued = this.queued;
    this.queued = undefined;
    if (this.socket.isPaused()) this.socket.resume();
    if (queued !== undefined) this.parse(queued, true);
  }

  /**
   * The rest of this connection is node:http's, from `rest` (the first byte of a request the lean
   * path does not serve) on: node:http's own connection listener takes the socket with those bytes
   * put back in front of whatever comes next.
   */
  private handOver(rest: Buffer): void {
    this.done = true;
    const socket = this.socket;
    socket.pause();
    socket.removeListener('data', this.onData);
    // node:http's parser reads the handle itself; anything it lets go of (an upgrade) comes as 'data' again.
    if (this.shared) readIntoStream(socket);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
    socket.removeListener('drain', this.onDrain);
    this.deadline.clear();
    this.parser.close();
    this.options.onHandOver?.();
    if (rest.length > 0) socket.unshift(rest);
    this.nodeListener.call(this.server, socket);
    socket.resume();
  }

  /** The client's FIN: as node:http (no half-open HTTP), the connection ends, and a response in flight with it. */
  private ended(): void {
    if (this.current !== undefined) this.socket.destroy();
    else (this.socket as net.Socket & { destroySoon(): void }).destroySoon();
  }

  private closed(): void {
    this.done = true;
    this.deadline.clear();
    this.queued = undefined;
    this.parser.close();
    const res = this.current;
    this.current = undefined;
    res?.connectionClosed();
  }

  /** @internal LeanResponse wrote body bytes: the stream-idle deadline starts again. */
  wrote(): void {
    if (this.current !== undefined) this.deadline.set(this.options.streamIdleTimeout);
  }

  private drained(): void {
    const res = this.current;
    if (res !== undefined) this.deadline.set(this.options.streamIdleTimeout);
    if (res?.needDrain) {
      res.needDrain = false;
      res.emit('drain');
    }
  }

  private timedOut(): void {
    if (this.current === undefined && this.served === 0 && this.queued === undefined) {
      // No request yet within headersTimeout: node:http's 408, through the listener's own clientError answer.
      this.done = true;
      this.server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), this.socket);
      return;
    }
    // A response in flight whose bytes the client is still taking (writableLength went down, though
    // nothing new was written: writes and 'drain' set the deadline again) is not silent; node:http
    // counts each write's completion as activity.
    const unsent = this.socket.writableLength;
    if (this.current !== undefined && unsent > 0 && unsent !== this.unsentAtCheck) {
      this.unsentAtCheck = unsent;
      this.deadline.set(this.options.streamIdleTimeout);
      return;
    }
    // Idle past keepAliveTimeout, or a request in flight silent past server.timeout: node:http destroys it.
    this.socket.destroy();
  }
}
