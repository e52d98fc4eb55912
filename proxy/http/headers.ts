/**
 * Header handling for a forwarding proxy (RFC 9110 §7.6): hop-by-hop fields — Connection, the
 * fields it lists, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade — are not
 * forwarded; X-Forwarded-For is appended to, X-Forwarded-Proto set, and a request id kept or made.
 */
import { isFieldName } from './field-name.ts';
import { newRequestId } from './request-id.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'trailer', 'http2-settings']);
/** 1 at the length of a hop-by-hop field name or of x-request-id (the names downstreamRawHeaders looks at). */
const SPECIAL_LENGTH = new Uint8Array(32);
for (const name of [...HOP_BY_HOP, 'x-request-id']) SPECIAL_LENGTH[name.length] = 1;
/** Request fields the proxy sets itself (or that undici refuses). */
const REPLACED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-request-id', 'expect']);
/** 1 at the length of a hop-by-hop or replaced field name (the names upstreamRequestHeaders looks at). */
const REQUEST_LENGTH = new Uint8Array(32);
for (const name of [...HOP_BY_HOP, ...REPLACED]) REQUEST_LENGTH[name.length] = 1;

/**
 * Lower-cased names listed in Connection headers (raw header pairs), but for the hop-by-hop ones,
 * which go anyway: the usual `Connection: keep-alive` then makes no Set, no split.
 */
function connectionListed(raw: readonly string[]): Set<string> | undefined {
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (isFieldName(raw[i]!, 'connection')) {
      const value = raw[i + 1]!;
      if (isFieldName(value, 'keep-alive')) continue;
      for (const token of value.split(',')) {
        const t = token.trim().toLowerCase();
        if (t && !HOP_BY_HOP.has(t)) (listed ??= new Set()).add(t);
      }
    }
  }
  return listed;
}

export interface ForwardInfo {
  remoteAddress: string | undefined;
  proto: 'http' | 'https';
  requestId: string;
  /** Keep Upgrade and `Connection: upgrade` (a WebSocket handshake). */
  upgrade?: boolean;
  /** Send this Host instead of the client's (the authority of an absolute-form target). */
  host?: string | undefined;
}

/** The request id: the client's x-request-id when it sent a sane one, else a new UUID. */
export function requestIdOf(raw: readonly string[]): string {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (isFieldName(name, 'x-request-id')) {
      const v = raw[i + 1]!;
      if (/^[\x21-\x7e]{1,200}$/.test(v)) return v;
    }
  }
  return newRequestId();
}

/** Flat `[name, value, …]` request headers for the upstream. */
export function upstreamRequestHeaders(raw: readonly string[], info: ForwardInfo): string[] {
  const listed = connectionListed(raw);
  const out: string[] = info.host !== undefined ? ['host', info.host] : [];
  let xff: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // A name of no length looked at below is kept without a toLowerCase (Host only when it is replaced).
    if (listed === undefined && REQUEST_LENGTH[name.length] !== 1 && (name.length !== 4 || info.host === undefined)) {
      out.push(name, raw[i + 1]!);
      continue;
    }
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
      continue;
    }
    if (REPLACED.has(lower) || (info.host !== undefined && lower === 'host')) continue;
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) {
      if (info.upgrade && lower === 'upgrade') out.push(name, raw[i + 1]!);
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  const remote = info.remoteAddress?.startsWith('::ffff:') ? info.remoteAddress.slice(7) : info.remoteAddress;
  if (remote) xff = xff === undefined ? remote : `${xff}, ${remote}`;
  if (xff !== undefined) out.push('x-forwarded-for', xff);
  out.push('x-forwarded-proto', info.proto, 'x-request-id', info.requestId);
  if (info.upgrade) out.push('connection', 'upgrade');
  return out;
}

const SEND_LENGTH = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The whole request head for the lean upstream client (upstream-h1.ts) straight from the client's
 * raw fields: the bytes H1Pool#request writes for upstreamRequestHeaders' list (the same fields in
 * the same order), without that list or an options object in between. `defaultHost`: the Host
 * sent when the client sent none (HTTP/1.0).
 */
export function upstreamRequestHead(method: string, path: string, raw: readonly string[], remoteAddress: string | undefined, proto: string, requestId: string, host: string | undefined, defaultHost: string): string {
  const listed = connectionListed(raw);
  let head = host !== undefined ? `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n` : `${method} ${path} HTTP/1.1\r\n`;
  let hasHost = host !== undefined;
  let hasLength = false;
  let xff: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const n = name.length;
    if (listed === undefined && REQUEST_LENGTH[n] !== 1 && (n !== 4 || host === undefined)) {
      if (n === 4 && !hasHost && isFieldName(name, 'host')) hasHost = true;
      head += `${name}: ${raw[i + 1]!}\r\n`;
      continue;
    }
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
      continue;
    }
    if (REPLACED.has(lower) || (host !== undefined && lower === 'host') || HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    if (lower === 'host') hasHost = true;
    else if (lower === 'content-length') hasLength = true;
    head += `${name}: ${raw[i + 1]!}\r\n`;
  }
  const remote = remoteAddress?.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
  if (remote) xff = xff === undefined ? remote : `${xff}, ${remote}`;
  if (xff !== undefined) head += `x-forwarded-for: ${xff}\r\n`;
  head += `x-forwarded-proto: ${proto}\r\nx-request-id: ${requestId}\r\n`;
  if (!hasHost) head += `host: ${defaultHost}\r\n`;
  if (!hasLength && SEND_LENGTH.has(method)) head += 'content-length: 0\r\n';
  return `${head}connection: keep-alive\r\n\r\n`;
}

/** Response headers from the upstream (undici's object form) without the hop-by-hop fields. */
export function downstreamResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  let listed: Set<string> | undefined;
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const v of Array.isArray(connection) ? connection : [connection]) {
      for (const token of v.split(',')) {
        const t = token.trim().toLowerCase();
        if (t) (listed ??= new Set()).add(t);
      }
    }
  }
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * Response headers from the upstream as raw `[name, value, …]` pairs (Node's parser), without the
 * hop-by-hop fields, with `x-request-id: requestId` added when the upstream sent none.
 */
export function downstreamRawHeaders(raw: readonly string[], requestId: string): string[] {
  const listed = connectionListed(raw);
  const out: string[] = [];
  let id = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // A name of no hop-by-hop field's length (nor x-request-id's) is kept without a toLowerCase.
    if (listed !== undefined || SPECIAL_LENGTH[name.length] === 1) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
      if (lower === 'x-request-id') id = true;
    }
    out.push(name, raw[i + 1]!);
  }
  if (!id) out.push('x-request-id', requestId);
  return out;
}

/** A request line and headers as bytes (for an Upgrade forwarded over a raw connection). */
export function requestHead(method: string, url: string, headers: readonly string[]): string {
  let head = `${method} ${url} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}
