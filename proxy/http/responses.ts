/** Answers the proxy gives itself: errors (503, 504, 400 …) and direct responses. */
import type http from 'node:http';
import type net from 'node:net';

// node:http through getBuiltinModule, not an ES import: that reads its lazy exports (http.WebSocket…),
// which load Node's own undici, http2 and tls into every generation (~40 ms of its start).
const { STATUS_CODES } = process.getBuiltinModule('node:http');

/** A short text answer; the body says what happened (`upstream timeout`, `no healthy upstream` …). */
export function reply(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  const text = body.endsWith('\n') || body === '' ? body : `${body}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** The status a request the HTTP parser refused gets: 431 for oversized headers, 408 for a header timeout, else 400. */
export function clientErrorStatus(err: NodeJS.ErrnoException): number {
  if (err.code === 'HPE_HEADER_OVERFLOW') return 431;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

/** Writes a complete error response on a raw socket (the parser failed: no ServerResponse exists) and closes it. */
export function replyRaw(socket: net.Socket, status: number, body: string): void {
  const text = `${body}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

/** The status and body for an upstream failure before any response byte. */
export function upstreamErrorReply(err: NodeJS.ErrnoException): { status: number; body: string; timeout: boolean } {
  const code = err.code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return { status: 504, body: 'upstream timeout: no response headers in time', timeout: true };
  // undici's HTTPParserError has no code for some refusals (a response not starting with HTTP/).
  if (err.name === 'HTTPParserError' || code.startsWith('HPE_') || code === 'UND_ERR_INFO' || code === 'UND_ERR_HEADERS_OVERFLOW') return { status: 502, body: `bad upstream response: ${err.message}`, timeout: false };
  // undici refused to send the request as the client sent it: the client's fault, not the upstream's.
  if (code === 'UND_ERR_INVALID_ARG') return { status: 400, body: `bad request: cannot be forwarded: ${err.message}`, timeout: false };
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { status: 503, body: 'upstream connect error: connect timeout', timeout: false };
  if (isConnectFailure(err)) return { status: 503, body: `upstream connect error: ${code || err.message}`, timeout: false };
  return { status: 503, body: `upstream reset before response: ${code || err.message}`, timeout: false };
}

/** True when the request never reached the upstream (safe to retry on another endpoint). */
export function isConnectFailure(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return ['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN'].includes(code);
}

/** True when a reused connection was closed under the request before any response byte. */
export function isResetBeforeResponse(err: NodeJS.ErrnoException): boolean {
  return err.code === 'UND_ERR_SOCKET' || err.code === 'ECONNRESET' || err.code === 'EPIPE';
}
