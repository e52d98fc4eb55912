/**
 * The request and response the lean downstream path (downstream-h1.ts) hands to the proxy's
 * request handler and to the SDK in place of node:http's IncomingMessage and ServerResponse. They
 * carry the part of that API http-forward.ts, responses.ts and the SDK's drain and request stats
 * use, with the head node:http would write (response-head.ts) and the body framed as it frames
 * one, so that everything above the socket — routing, headers, stats, the access log, drain — is
 * the same code on both paths and a client cannot tell which one answered.
 */
import type net from 'node:net';
import { ResponseHead, type HeaderValue } from './response-head.ts';

/** The connection a response belongs to (downstream-h1.ts). */
export interface ResponseOwner {
  readonly socket: net.Socket;
  /** node:http's keepAliveTimeout, for the `Keep-Alive: timeout=` it advertises. */
  readonly keepAliveTimeout: number;
  /** Body bytes went to the socket before the end (the connection's stream-idle deadline starts again). */
  wrote(): void;
  /** The response has been handed to the socket whole; `last`: the connection closes after it. */
  responseEnded(res: LeanResponse, last: boolean): void;
}

const NO_HEADERS: Record<string, string | undefined> = Object.freeze({});

/** A bodiless HTTP/1.1 request as the lean path parsed it (what requestTarget and http-forward read). */
export class LeanRequest {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly socket: net.Socket;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly httpVersion = '1.1';
  readonly complete = true;
  /** Empty: the lean path takes no request with Content-Length or Transfer-Encoding, the only fields read from it. */
  readonly headers = NO_HEADERS;

  constructor(method: string, url: string, rawHeaders: string[], socket: net.Socket) {
    this.method = method;
    this.url = url;
    this.rawHeaders = rawHeaders;
    this.socket = socket;
  }
}

/** Below this, the head and the body are copied into one buffer for one write; above, the copy would cost more than the writev. */
const SMALL = 16 * 1024;

function emitClose(res: LeanResponse): void {
  res.emit('close');
}

function finishNT(res: LeanResponse): void {
  res.finished();
}

type Listener = (...args: unknown[]) => void;

/** The response of one lean request: its head is ResponseHead's, its bytes go straight to the socket. */
export class LeanResponse extends ResponseHead {
  destroyed = false;
  writableEnded = false;
  writableFinished = false;
  /** A write returned false: 'drain' is emitted when the socket drains. */
  needDrain = false;
  readonly req: LeanRequest;
  private readonly owner: ResponseOwner;
  private trailer = '';
  private closed = false;
  /** once('close') goes to EventEmitter: 'close' has been emitted (so it will not run, as on node:http), or another kind of 'close' listener came. */
  private closeEmitted = false;
  /** cork() calls not yet undone by uncork(). */
  private corked = 0;
  /** Body bytes (and chunk framing, latin1 strings) written since the last flush. */
  private pieces: (Buffer | string)[] = [];
  private pending = 0;
  /**
   * once('close') listeners, in the order they came, kept out of EventEmitter: 'close' comes once,
   * and EventEmitter's once() made a bound wrapper for each and its removal rebuilt the listener
   * table — three of each per request (the SDK's drain and request stats, the proxy's handler).
   */
  private onClose: Listener[] | undefined = undefined;

  constructor(req: LeanRequest, owner: ResponseOwner, shouldKeepAlive: boolean) {
    super(shouldKeepAlive, req.method !== 'HEAD', owner.keepAliveTimeout);
    this.req = req;
    this.owner = owner;
  }

  /** Writes wait until uncork (or end): the head and a small body then go out as one buffer. */
  cork(): void {
    this.corked += 1;
  }

  uncork(): void {
    if (this.corked > 0 && --this.corked === 0 && !this.writableEnded) {
      if (!this.flush()) this.needDrain = true;
      this.owner.wrote();
    }
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    if (!this.hasBody) return true;
    this.body(chunk);
    if (this.corked > 0) return true;
    const ok = this.flush();
    if (!ok) this.needDrain = true;
    this.owner.wrote();
    return ok;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    if (!this.headersSent) {
      this.contentLength = chunk === undefined ? 0 : typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      this.writeHead(this.statusCode);
    }
    this.writableEnded = true;
    if (this.destroyed || this.owner.socket.destroyed) return this;
    if (chunk !== undefined && this.hasBody) this.body(chunk);
    if (this.hasBody && this.chunkedEncoding) this.piece(`0\r\n${this.trailer}\r\n`);
    this.corked = 0;
    this.flush();
    // Every byte is in the kernel: 'finish' needs no write callback, which cost Writable a tick
    // object and a tick of its own per response; bytes still queued in the socket finish with it.
    const socket = this.owner.socket;
    if (socket.writableLength === 0 && socket.errored === null) process.nextTick(finishNT, this);
    else socket.write('', 'latin1', (err?: Error | null) => this.flushed(err));
    this.owner.responseEnded(this, this.last);
    return this;
  }

  addTrailers(headers: Record<string, HeaderValue> | readonly (readonly [string, HeaderValue])[]): void {
    this.trailer = '';
    const pairs: (readonly [string, HeaderValue])[] = Array.isArray(headers) ? [...(headers as readonly (readonly [string, HeaderValue])[])] : Object.entries(headers);
    for (const [name, value] of pairs) {
      if (Array.isArray(value) && value.length > 1) for (const v of value as readonly string[]) this.trailer += `${name}: ${v}\r\n`;
      else this.trailer += `${name}: ${Array.isArray(value) ? value.join('; ') : String(value)}\r\n`;
    }
  }

  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.owner.socket.destroy();
    }
    return this;
  }

  /** The connection closed: a response not yet flushed whole is over too (node:http's 'close' on a cut response). */
  connectionClosed(): void {
    if (this.closed) return;
    this.destroyed = true;
    this.closed = true;
    this.emit('close');
  }

  override once(event: string | symbol, listener: Listener): this {
    if (event !== 'close' || this.closeEmitted) return super.once(event, listener);
    (this.onClose ??= []).push(listener);
    return this;
  }

  // Any other way of listening to 'close' first hands the once() ones to EventEmitter, in their
  // order, so that listeners run in the order they came as on node:http (and all are EventEmitter's from then on).
  override on(event: string | symbol, listener: Listener): this {
    if (event === 'close') this.spill();
    return super.on(event, listener);
  }

  override addListener(event: string | symbol, listener: Listener): this {
    if (event === 'close') this.spill();
    return super.addListener(event, listener);
  }

  override prependListener(event: string | symbol, listener: Listener): this {
    if (event === 'close') this.spill();
    return super.prependListener(event, listener);
  }

  override prependOnceListener(event: string | symbol, listener: Listener): this {
    if (event === 'close') this.spill();
    return super.prependOnceListener(event, listener);
  }

  override removeListener(event: string | symbol, listener: Listener): this {
    if (event === 'close' && this.onClose !== undefined) {
      const i = this.onClose.indexOf(listener);
      if (i !== -1) {
        this.onClose.splice(i, 1);
        return this;
      }
    }
    return super.removeListener(event, listener);
  }

  override off(event: string | symbol, listener: Listener): this {
    return this.removeListener(event, listener);
  }

  override listenerCount(event: string | symbol, listener?: Listener): number {
    const own = event !== 'close' || this.onClose === undefined ? 0 : listener === undefined ? this.onClose.length : this.onClose.filter((l) => l === listener).length;
    return own + super.listenerCount(event, listener);
  }

  override listeners(event: string | symbol): Listener[] {
    const rest = super.listeners(event) as Listener[];
    return event === 'close' && this.onClose !== undefined ? [...this.onClose, ...rest] : rest;
  }

  override rawListeners(event: string | symbol): Listener[] {
    const rest = super.rawListeners(event) as Listener[];
    return event === 'close' && this.onClose !== undefined ? [...this.onClose, ...rest] : rest;
  }

  /** 'close' runs the once('close') listeners kept here (in their order: EventEmitter has none then), then EventEmitter's. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'close') return super.emit(event, ...args);
    this.closeEmitted = true;
    const own = this.onClose;
    this.onClose = undefined;
    if (own !== undefined) for (const l of own) l.apply(this, args);
    return super.emit(event, ...args) || (own !== undefined && own.length > 0);
  }

  private spill(): void {
    const own = this.onClose;
    this.onClose = undefined;
    // From now on every 'close' listener is EventEmitter's.
    this.closeEmitted = true;
    if (own !== undefined) for (const l of own) super.once('close', l);
  }

  /** Whether a chunk written is still referenced: queued here (corked) or by the socket (not yet all in the kernel). */
  holdsWrites(): boolean {
    return this.pieces.length > 0 || this.owner.socket.writableLength > 0;
  }

  /** Queues body bytes, framed as a chunk when the length is not known. */
  private body(chunk: Buffer | string): void {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.chunkedEncoding) {
      if (data.length > 0) this.piece(data);
      return;
    }
    if (data.length === 0) return;
    this.piece(`${data.length.toString(16)}\r\n`);
    this.piece(data);
    this.piece('\r\n');
  }

  private piece(p: Buffer | string): void {
    this.pieces.push(p);
    this.pending += p.length;
  }

  /**
   * Writes the head (if not yet written) and the queued pieces: one buffer when they are small
   * (one write through the socket's stream instead of a writev of several), as they are otherwise.
   * Returns the socket's write() answer.
   */
  private flush(): boolean {
    const socket = this.owner.socket;
    const head = this.head;
    const pieces = this.pieces;
    this.head = undefined;
    if (pieces.length === 0 && head === undefined) return true;
    let ok: boolean;
    if (this.pending <= SMALL) {
      const out = Buffer.allocUnsafe((head === undefined ? 0 : head.length) + this.pending);
      let at = head === undefined ? 0 : out.write(head, 0, 'latin1');
      for (const p of pieces) at += typeof p === 'string' ? out.write(p, at, 'latin1') : p.copy(out, at);
      ok = socket.write(out);
    } else {
      socket.cork();
      if (head !== undefined) socket.write(head, 'latin1');
      for (let i = 0; i < pieces.length - 1; i++) socket.write(pieces[i]!, 'latin1');
      ok = socket.write(pieces[pieces.length - 1]!, 'latin1');
      socket.uncork();
    }
    // Emptied, not replaced: the socket took the pieces (or their copy), the array is free again.
    pieces.length = 0;
    this.pending = 0;
    return ok;
  }

  /** The last write reached the socket (node:http's 'finish'); 'close' follows on the next tick, as there. */
  private flushed(err?: Error | null): void {
    // A failed write is not a finished response. The connection has moved on to its next request
    // (responseEnded), so its close no longer reaches this one: the write's error says it closed.
    if (err) return this.connectionClosed();
    if (this.closed) return;
    this.writableFinished = true;
    this.closed = true;
    this.emit('finish');
    process.nextTick(emitClose, this);
  }

  /**
   * @internal The last write went to the kernel whole, a tick ago: 'finish', then 'close' in the
   * same tick (node:http puts a tick between them; nothing of the proxy's waits on one).
   */
  finished(): void {
    if (this.closed) return;
    this.writableFinished = true;
    this.closed = true;
    this.emit('finish');
    this.emit('close');
  }
}

