/**
 * The request and response the lean downstream path (downstream-h1.ts) hands to the proxy's
 * request handler and to the SDK in place of node:http's IncomingMessage and ServerResponse. They
 * carry the part of that API http-forward.ts, responses.ts and the SDK's drain and request stats
 * use, and the response head is written byte for byte as node:http's `_storeHeader` writes it
 * (its Date, Connection and Keep-Alive fields, chunked framing when no length is known), so that
 * everything above the socket — routing, headers, stats, the access log, drain — is the same code
 * on both paths and a client cannot tell which one answered.
 */
import type net from 'node:net';

// node:http through getBuiltinModule, not an ES import: that reads its lazy exports (http.WebSocket…),
// which load Node's own undici, http2 and tls into every generation (~40 ms of its start).
const { ServerResponse, STATUS_CODES } = process.getBuiltinModule('node:http');

/** The connection a response belongs to (downstream-h1.ts). */
export interface ResponseOwner {
  readonly socket: net.Socket;
  /** node:http's keepAliveTimeout, for the `Keep-Alive: timeout=` it advertises. */
  readonly keepAliveTimeout: number;
  /** The response has been handed to the socket whole; `last`: the connection closes after it. */
  responseEnded(res: LeanResponse, last: boolean): void;
}

type HeaderValue = string | number | readonly string[];
type Headers = Record<string, HeaderValue | undefined> | readonly string[] | readonly (readonly [string, HeaderValue])[];

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

// node:http's own (_http_outgoing.js).
const RE_CONN_CLOSE = /(?:^|\W)close(?:$|\W)/i;
const RE_TE_CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;

let dateCache = '';
let dateUntil = 0;
/** node:http's Date value, made once per second as node:http makes it. */
function utcDate(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateCache = new Date(now).toUTCString();
    dateUntil = now - (now % 1000) + 1000;
  }
  return dateCache;
}

function emitClose(res: LeanResponse): void {
  res.emit('close');
}

/**
 * The response of one lean request. Its prototype chain goes through ServerResponse's so that the
 * SDK, which counts and drains every `instanceof ServerResponse` it sees on the server's 'request'
 * event, treats it as one; every method the proxy or the SDK calls is its own.
 */
export class LeanResponse {
  statusCode = 200;
  statusMessage: string | undefined = undefined;
  headersSent = false;
  destroyed = false;
  writableEnded = false;
  writableFinished = false;
  chunkedEncoding = false;
  shouldKeepAlive: boolean;
  /** A write returned false: 'drain' is emitted when the socket drains. */
  needDrain = false;
  readonly req: LeanRequest;
  private readonly owner: ResponseOwner;
  /** The head made by writeHead, written with the first body bytes (or at end). */
  private head: string | undefined = undefined;
  private hasBody: boolean;
  private last = false;
  private contentLength: number | undefined = undefined;
  private trailer = '';
  private defaultKeepAlive = true;
  private closed = false;
  /** Fields set before writeHead (the SDK's `Connection: close` while draining), by lower-cased name. */
  private fields: Map<string, [string, HeaderValue]> | undefined = undefined;
  // writeHead's scan of the fields it writes (node:http's `state`).
  private sawConnection = false;
  private sawLength = false;
  private sawTe = false;
  private sawDate = false;
  private sawTrailer = false;

  constructor(req: LeanRequest, owner: ResponseOwner, shouldKeepAlive: boolean) {
    this.req = req;
    this.owner = owner;
    this.shouldKeepAlive = shouldKeepAlive;
    this.hasBody = req.method !== 'HEAD';
  }

  setHeader(name: string, value: HeaderValue): this {
    if (this.headersSent) throw Object.assign(new Error('Cannot set headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    (this.fields ??= new Map()).set(name.toLowerCase(), [name, value]);
    return this;
  }

  cork(): void {
    this.owner.socket.cork();
  }

  uncork(): void {
    this.owner.socket.uncork();
  }

  /** node:http's writeHead: the status line and fields, then what node:http adds (see _storeHeader). */
  writeHead(status: number, reason?: string | Headers, obj?: Headers): this {
    if (this.headersSent) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    if (typeof reason === 'string') this.statusMessage = reason;
    else {
      this.statusMessage ||= STATUS_CODES[status] || 'unknown';
      obj ??= reason;
    }
    this.statusCode = status;
    if (status === 204 || status === 304 || (status >= 100 && status <= 199)) this.hasBody = false;
    let head = `HTTP/1.1 ${status} ${this.statusMessage}\r\n`;
    if (this.fields) head += this.mergedFields(obj);
    else if (Array.isArray(obj)) {
      if (obj.length > 0 && Array.isArray(obj[0])) for (const [k, v] of obj as readonly (readonly [string, HeaderValue])[]) head += this.field(k, v);
      else for (let i = 0; i < obj.length; i += 2) head += this.field(obj[i] as string, obj[i + 1] as string);
    } else if (obj) {
      const o = obj as Record<string, HeaderValue | undefined>;
      for (const k in o) if (Object.hasOwn(o, k)) head += this.field(k, o[k] as HeaderValue);
    }
    if (!this.sawDate) head += `Date: ${utcDate()}\r\n`;
    if (this.chunkedEncoding && (status === 204 || status === 304)) {
      this.chunkedEncoding = false;
      this.shouldKeepAlive = false;
    }
    if (!this.sawConnection) {
      // HTTP/1.1 only (the lean path takes no other), so node:http's useChunkedEncodingByDefault is true.
      if (this.shouldKeepAlive) {
        head += 'Connection: keep-alive\r\n';
        if (this.owner.keepAliveTimeout && this.defaultKeepAlive) head += `Keep-Alive: timeout=${Math.floor(this.owner.keepAliveTimeout / 1000)}\r\n`;
      } else {
        this.last = true;
        head += 'Connection: close\r\n';
      }
    }
    if (!this.sawLength && !this.sawTe) {
      if (!this.hasBody) this.chunkedEncoding = false;
      else if (!this.sawTrailer && typeof this.contentLength === 'number') head += `Content-Length: ${this.contentLength}\r\n`;
      else {
        head += 'Transfer-Encoding: chunked\r\n';
        this.chunkedEncoding = true;
      }
    }
    if (this.chunkedEncoding !== true && this.sawTrailer) throw Object.assign(new Error('Trailers are invalid with this transfer encoding'), { code: 'ERR_HTTP_TRAILER_INVALID' });
    this.head = `${head}\r\n`;
    this.headersSent = true;
    return this;
  }

  /** As node:http when fields were set before writeHead: set ones first, an array's replacing them by name, an object's in place. */
  private mergedFields(obj: Headers | undefined): string {
    const fields = this.fields!;
    if (Array.isArray(obj)) {
      const pairs: [string, HeaderValue][] = [];
      if (obj.length > 0 && Array.isArray(obj[0])) for (const [k, v] of obj as readonly (readonly [string, HeaderValue])[]) pairs.push([k, v]);
      else for (let i = 0; i < obj.length; i += 2) pairs.push([obj[i] as string, obj[i + 1] as string]);
      for (const [k] of pairs) fields.delete(k.toLowerCase());
      for (const [k, v] of pairs) {
        const key = k.toLowerCase();
        const had = fields.get(key);
        if (had) fields.set(key, [k, [...(Array.isArray(had[1]) ? had[1] : [String(had[1])]), ...(Array.isArray(v) ? v : [String(v)])]]);
        else fields.set(key, [k, v]);
      }
    } else if (obj) {
      const o = obj as Record<string, HeaderValue | undefined>;
      for (const k of Object.keys(o)) if (k) fields.set(k.toLowerCase(), [k, o[k] as HeaderValue]);
    }
    let out = '';
    for (const [name, value] of fields.values()) out += this.field(name, value);
    return out;
  }

  /** node:http's processHeader, storeHeader and matchHeader for one field. */
  private field(name: string, value: HeaderValue): string {
    if (Array.isArray(value)) {
      if (value.length < 2 || name.toLowerCase() !== 'cookie') {
        let out = '';
        for (const v of value as readonly string[]) out += this.field(name, v);
        return out;
      }
      value = value.join('; ');
    }
    let text = String(value);
    if (name.length >= 4 && name.length <= 19) {
      switch (name.toLowerCase()) {
        case 'connection':
          this.sawConnection = true;
          if (RE_CONN_CLOSE.test(text)) this.last = true;
          else this.shouldKeepAlive = true;
          break;
        case 'transfer-encoding':
          this.sawTe = true;
          if (RE_TE_CHUNKED.test(text)) this.chunkedEncoding = true;
          break;
        case 'content-length':
          this.sawLength = true;
          this.contentLength = +text;
          break;
        case 'date':
          this.sawDate = true;
          break;
        case 'trailer':
          this.sawTrailer = true;
          break;
        case 'keep-alive':
          this.defaultKeepAlive = false;
          break;
        case 'content-disposition':
          // node:http re-encodes it when a length is known (nodejs/node#46528): latin1 bytes read back as UTF-8.
          if (this.contentLength) text = Buffer.from(text, 'latin1').toString();
          break;
      }
    }
    return `${name}: ${text}\r\n`;
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    if (!this.hasBody) return true;
    const socket = this.owner.socket;
    socket.cork();
    this.flushHead();
    const ok = this.body(chunk);
    socket.uncork();
    if (!ok) this.needDrain = true;
    return ok;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    if (!this.headersSent) {
      this.contentLength = chunk === undefined ? 0 : typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      this.writeHead(this.statusCode);
    }
    this.writableEnded = true;
    const socket = this.owner.socket;
    if (this.destroyed || socket.destroyed) return this;
    socket.cork();
    this.flushHead();
    if (chunk !== undefined && this.hasBody) this.body(chunk);
    if (this.hasBody && this.chunkedEncoding) socket.write(`0\r\n${this.trailer}\r\n`, 'latin1', this.flushed);
    else socket.write('', 'latin1', this.flushed);
    socket.uncork();
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
    this.destroyed = true;
    if (!this.closed) {
      this.closed = true;
      this.emit('close');
    }
  }

  private flushHead(): void {
    if (this.head === undefined) return;
    this.owner.socket.write(this.head, 'latin1');
    this.head = undefined;
  }

  private body(chunk: Buffer | string): boolean {
    const socket = this.owner.socket;
    if (!this.chunkedEncoding) return socket.write(chunk);
    const length = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (length === 0) return true;
    socket.write(`${length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    return socket.write('\r\n', 'latin1');
  }

  /** The last write reached the socket (node:http's 'finish'); 'close' follows on the next tick, as there. */
  private readonly flushed = (): void => {
    if (this.closed) return;
    this.writableFinished = true;
    this.closed = true;
    this.emit('finish');
    process.nextTick(emitClose, this);
  };
}

// The methods above shadow node:http's; EventEmitter's (on, once, emit) come through unchanged.
Object.setPrototypeOf(LeanResponse.prototype, ServerResponse.prototype);
export interface LeanResponse {
  on(event: string, listener: (...args: unknown[]) => void): this;
  once(event: string, listener: (...args: unknown[]) => void): this;
  emit(event: string, ...args: unknown[]): boolean;
}
