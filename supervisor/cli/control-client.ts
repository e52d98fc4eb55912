// The control client speaks HTTP/1.1 over `node:net` itself: `node:http` costs a client command
// about 50 ms of CPU to load (it pulls in undici, crypto and tls), more than the rest of
// `baton reload` together. The server is Baton's own (control/server.ts): every reply has a
// content-length and `connection: close`, so one request per connection, read to its end.
import net from 'node:net';
import { BatonError } from '../../shared/errors.ts';
import { checkControlSocketPath } from '../os/paths.ts';

export interface ControlResponse {
  status: number;
  body: unknown;
}

/** The largest reply accepted (a memory series of a long-lived instance is the biggest). */
const MAX_REPLY_BYTES = 256 * 1024 * 1024;

/**
 * One request to an instance's control socket; ERR_CONTROL_UNREACHABLE when nobody accepts it,
 * ERR_TIMEOUT when a supervisor accepts but does not answer within `timeoutMs` (a wedged one).
 */
export function controlRequest(socketPath: string, method: string, path: string, timeoutMs = 10_000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    // A socket another user could have put there would answer for an instance that is not ours.
    checkControlSocketPath(socketPath);
    // A fresh connection each time: a pooled one could outlive the supervisor it reached (an upgrade).
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(err);
    };
    const unreachable = (why: string, cause?: Error): BatonError =>
      new BatonError('ERR_CONTROL_UNREACHABLE', `no Baton instance answers at ${socketPath} (${why}): is it running?`, cause ? { cause } : {});
    socket.setTimeout(timeoutMs, () => {
      fail(new BatonError('ERR_TIMEOUT', `the Baton instance at ${socketPath} did not answer ${method} ${path} within ${timeoutMs / 1000} s`));
    });
    socket.once('connect', () => {
      // Not end(): Node's HTTP server takes a half-closed request for an aborted one.
      socket.write(`${method} ${path} HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    });
    socket.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REPLY_BYTES) return fail(new BatonError('ERR_CONTROL', `the reply from ${socketPath} exceeds ${MAX_REPLY_BYTES} bytes`));
      chunks.push(c);
    });
    socket.once('end', () => {
      if (settled) return;
      const raw = Buffer.concat(chunks);
      // Closed before a whole reply came: what node:http called "socket hang up".
      if (raw.length === 0) return fail(unreachable('ECONNRESET'));
      try {
        const reply = parseReply(raw);
        if (reply === undefined) return fail(unreachable('ECONNRESET'));
        settled = true;
        resolve(reply);
      } catch (err) {
        fail(new BatonError('ERR_CONTROL', `unexpected reply from ${socketPath}: ${raw.subarray(0, 200).toString('utf8')}`, { cause: err }));
      }
    });
    socket.once('error', (err: NodeJS.ErrnoException) => fail(unreachable(err.code ?? err.message, err)));
  });
}

/** An HTTP/1.1 response read to the end of its connection; undefined when it was cut short. */
export function parseReply(raw: Buffer): ControlResponse | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine = '', ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!status) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.subarray(end + 4);
  if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) {
    const decoded = dechunk(body);
    if (decoded === undefined) return undefined;
    body = decoded;
  } else if (headers.has('content-length')) {
    const length = Number(headers.get('content-length'));
    if (!Number.isSafeInteger(length) || length < 0) throw new Error(`bad content-length ${headers.get('content-length')}`);
    if (body.length < length) return undefined;
    body = body.subarray(0, length);
  }
  return { status: Number(status[1]), body: JSON.parse(body.toString('utf8')) };
}

/** A chunked body's data; undefined when the last chunk never came. */
function dechunk(body: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol === -1) return undefined;
    const size = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error('bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    if (body.length < eol + 2 + size) return undefined;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
