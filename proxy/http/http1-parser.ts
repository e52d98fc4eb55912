/**
 * node:http's own HTTP/1.1 parser (llhttp), as node:http drives it, for the proxy's lean upstream
 * client (upstream-h1.ts) and its lean downstream path (downstream-h1.ts). It comes from
 * `_http_common`, which Node keeps for compatibility but does not document, so it is checked once
 * here and the proxy does without it where it is gone.
 */
import { isFieldName } from './field-name.ts';

export interface HTTPParserInstance {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  free?(): void;
  [key: number]: unknown;
}
export interface HTTPParserClass {
  new (): HTTPParserInstance;
  RESPONSE: number;
  REQUEST: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
}
/**
 * node:http's parser, from `_http_common`: a module Node keeps for compatibility but does not
 * document. Undefined where a Node no longer has it in this shape; the clusters then send
 * every request through undici (cluster.ts), slower but the same answers.
 */
export const HTTPParser = ((): HTTPParserClass | undefined => {
  try {
    const parser = (process.getBuiltinModule('_http_common') as unknown as { HTTPParser?: HTTPParserClass } | undefined)?.HTTPParser;
    const hooks = parser ? [parser.RESPONSE, parser.kOnHeaders, parser.kOnHeadersComplete, parser.kOnBody, parser.kOnMessageComplete] : [];
    return typeof parser === 'function' && hooks.every((k) => typeof k === 'number') ? parser : undefined;
  } catch {
    return undefined;
  }
})();
/** Whether this Node has the parser the lean client is built on. */
export const leanClientAvailable = HTTPParser !== undefined;
/**
 * The method names a request parser reports by index (kOnHeadersComplete's fourth argument), from
 * the same module; without them, or without REQUEST mode, the lean downstream path is off.
 */
export const requestMethods = ((): readonly string[] | undefined => {
  if (!HTTPParser || typeof HTTPParser.REQUEST !== 'number') return undefined;
  const methods = (process.getBuiltinModule('_http_common') as unknown as { methods?: unknown }).methods;
  return Array.isArray(methods) && methods.every((m) => typeof m === 'string') ? (methods as string[]) : undefined;
})();
/** Whether this Node has what the lean downstream path is built on (a request parser and its method table). */
export const leanServerAvailable = requestMethods !== undefined;
export const kOnHeaders = (HTTPParser?.kOnHeaders ?? 0) | 0;
export const kOnHeadersComplete = (HTTPParser?.kOnHeadersComplete ?? 0) | 0;
export const kOnBody = (HTTPParser?.kOnBody ?? 0) | 0;
export const kOnMessageComplete = (HTTPParser?.kOnMessageComplete ?? 0) | 0;
/**
 * Where the head that starts at `from` ends (just past its first CRLF CRLF, which llhttp without
 * lenient flags needs to end one), or -1 when buf[from, to) does not hold it all. Looked for in JS:
 * every fourth byte is read, and only a CR or LF there is looked at closer, since any CRLF CRLF
 * covers one of them — a third of what Buffer#indexOf costs on a head of ~150 bytes.
 */
export function headEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = from + 3; i < to; i += 4) {
    const c = buf[i];
    if (c !== 10 && c !== 13) continue;
    for (let s = i - 3; s <= i && s + 3 < to; s++) {
      if (buf[s] === 13 && buf[s + 1] === 10 && buf[s + 2] === 13 && buf[s + 3] === 10) return s + 4;
    }
  }
  return -1;
}

/**
 * The Content-Length of an answer whose body the upstream client may cut itself: one length and no
 * Transfer-Encoding (llhttp has refused a bad or conflicting one by then); -1 otherwise.
 */
export function framedLength(raw: readonly string[]): number {
  let length = -1;
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (isFieldName(name, 'content-length')) {
      if (seen) return -1;
      seen = true;
      length = digits(raw[i + 1]!);
    } else if (isFieldName(name, 'transfer-encoding')) return -1;
  }
  return length;
}

/**
 * A Content-Length value (digits by then, trimmed by node) as a number, -1 if not a safe integer.
 * Not Number(): it hashes a string new each time (is it an array index?) before parsing it.
 */
function digits(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return value.length > 0 && Number.isSafeInteger(n) ? n : -1;
}
