/**
 * node:http's response head (_http_outgoing.js's writeHead, _storeHeader, processHeader and
 * matchHeader) for the lean downstream path's responses: the status line, the fields as given,
 * then what node:http adds — Date, Connection and Keep-Alive, Content-Length or
 * Transfer-Encoding: chunked — and what that decides (keep the connection, frame the body), so
 * the bytes are node:http's own. HTTP/1.1 only: the lean path takes no other request.
 */

// node:http through getBuiltinModule, not an ES import: that reads its lazy exports (http.WebSocket…),
// which load Node's own undici, http2 and tls into every generation (~40 ms of its start).
const { ServerResponse, STATUS_CODES } = process.getBuiltinModule('node:http');

import type { EventEmitter } from 'node:events';
import { isFieldName } from './field-name.ts';

export type HeaderValue = string | number | readonly string[];
export type Headers = Record<string, HeaderValue | undefined> | readonly string[] | readonly (readonly [string, HeaderValue])[];

/** 1 at the length of a field name writeHead looks at (connection, transfer-encoding, content-length, date, trailer, keep-alive, content-disposition). */
const FIELD_LENGTH = new Uint8Array(32);
for (const name of ['connection', 'transfer-encoding', 'content-length', 'date', 'trailer', 'keep-alive', 'content-disposition']) FIELD_LENGTH[name.length] = 1;

// node:http's own (_http_outgoing.js).
const RE_CONN_CLOSE = /(?:^|\W)close(?:$|\W)/i;
const RE_TE_CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;

let dateLine = '';
let dateUntil = 0;
/** node:http's Date field (its value made once per second as node:http makes it), the whole line. */
function dateField(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateLine = `Date: ${new Date(now).toUTCString()}\r\n`;
    dateUntil = now - (now % 1000) + 1000;
  }
  return dateLine;
}

let keepAliveFor = -1;
let keepAliveLines = '';
/** `Connection: keep-alive` and `Keep-Alive: timeout=` for a keep-alive timeout: the same string for every response of a listener. */
function keepAliveFields(timeout: number): string {
  if (timeout !== keepAliveFor) {
    keepAliveFor = timeout;
    keepAliveLines = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(timeout / 1000)}\r\n`;
  }
  return keepAliveLines;
}

/** What a response says of itself in its head; LeanResponse (lean-response.ts) writes the rest. */
export class ResponseHead {
  statusCode = 200;
  statusMessage: string | undefined = undefined;
  headersSent = false;
  chunkedEncoding = false;
  shouldKeepAlive: boolean;
  /** The head writeHead made, for LeanResponse to write with the first body bytes (or at end). */
  protected head: string | undefined = undefined;
  protected hasBody: boolean;
  /** The connection closes after this response. */
  protected last = false;
  protected contentLength: number | undefined = undefined;
  private readonly keepAliveTimeout: number;
  private defaultKeepAlive = true;
  /** Fields set before writeHead (the SDK's `Connection: close` while draining), by lower-cased name. */
  private fields: Map<string, [string, HeaderValue]> | undefined = undefined;
  // writeHead's scan of the fields it writes (node:http's `state`).
  private sawConnection = false;
  private sawLength = false;
  private sawTe = false;
  private sawDate = false;
  private sawTrailer = false;

  /** `keepAliveTimeout`: node:http's, for the `Keep-Alive: timeout=` it advertises. */
  constructor(shouldKeepAlive: boolean, hasBody: boolean, keepAliveTimeout: number) {
    this.shouldKeepAlive = shouldKeepAlive;
    this.hasBody = hasBody;
    this.keepAliveTimeout = keepAliveTimeout;
  }

  setHeader(name: string, value: HeaderValue): this {
    if (this.headersSent) throw Object.assign(new Error('Cannot set headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    (this.fields ??= new Map()).set(name.toLowerCase(), [name, value]);
    return this;
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
    if (!this.sawDate) head += dateField();
    if (this.chunkedEncoding && (status === 204 || status === 304)) {
      this.chunkedEncoding = false;
      this.shouldKeepAlive = false;
    }
    if (!this.sawConnection) {
      // HTTP/1.1 only (the lean path takes no other), so node:http's useChunkedEncodingByDefault is true.
      if (this.shouldKeepAlive) {
        if (this.keepAliveTimeout && this.defaultKeepAlive) head += keepAliveFields(this.keepAliveTimeout);
        else head += 'Connection: keep-alive\r\n';
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
    if (FIELD_LENGTH[name.length] === 1) {
      if (isFieldName(name, 'connection')) {
        this.sawConnection = true;
        if (RE_CONN_CLOSE.test(text)) this.last = true;
        else this.shouldKeepAlive = true;
      } else if (isFieldName(name, 'transfer-encoding')) {
        this.sawTe = true;
        if (RE_TE_CHUNKED.test(text)) this.chunkedEncoding = true;
      } else if (isFieldName(name, 'content-length')) {
        this.sawLength = true;
        this.contentLength = +text;
      } else if (isFieldName(name, 'date')) this.sawDate = true;
      else if (isFieldName(name, 'trailer')) this.sawTrailer = true;
      else if (isFieldName(name, 'keep-alive')) this.defaultKeepAlive = false;
      else if (isFieldName(name, 'content-disposition') && this.contentLength) {
        // node:http re-encodes it when a length is known (nodejs/node#46528): latin1 bytes read back as UTF-8.
        text = Buffer.from(text, 'latin1').toString();
      }
    }
    return `${name}: ${text}\r\n`;
  }

}

/** EventEmitter's methods come through the prototype chain set below. */
export interface ResponseHead extends EventEmitter {}

// The prototype chain goes through ServerResponse's so that the SDK, which counts and drains every
// `instanceof ServerResponse` the server's 'request' event carries, takes a LeanResponse for one.
// The methods of ResponseHead and LeanResponse shadow node:http's; EventEmitter's come through.
Object.setPrototypeOf(ResponseHead.prototype, ServerResponse.prototype);
