// The control socket's answer read from its bytes. The server is Baton's own
// (supervisor/control/server.ts): HTTP/1.1, a status line, header lines, a Content-Length body and
// a close. A chunked body is read too, for a proxy or an older supervisor in between; anything
// else is a reply this client does not understand, said with what came.

/** A whole reply: its status and body bytes. */
export interface ControlReplyBytes {
  status: number;
  body: Buffer;
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** More head than any answer of ours has: past it without a blank line, it is not one. */
const MAX_HEAD = 16 * 1024;

/**
 * The reply in `bytes`; undefined while more must come (`closed` false), an Error when what came
 * is not an HTTP/1.x reply or `closed` cut it short.
 */
export function readReply(bytes: Buffer, closed: boolean): ControlReplyBytes | Error | undefined {
  const headEnd = bytes.indexOf(HEAD_END);
  if (headEnd === -1) {
    if (bytes.length > MAX_HEAD) return new Error(`no end of the head in ${bytes.length} bytes`);
    return closed ? new Error(`a head cut short: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`) : undefined;
  }
  const [statusLine = '', ...fields] = bytes.toString('latin1', 0, headEnd).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!status) return new Error(`expected an HTTP/1.x status line, got ${JSON.stringify(statusLine.slice(0, 100))}`);
  let length: number | undefined;
  let chunked = false;
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon <= 0) return new Error(`a header line without a name: ${JSON.stringify(field.slice(0, 100))}`);
    const name = field.slice(0, colon).trim().toLowerCase();
    const value = field.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== Number(value))) return new Error(`a Content-Length of ${JSON.stringify(value)}`);
      length = Number(value);
    } else if (name === 'transfer-encoding') chunked = value.toLowerCase().split(',').map((v) => v.trim()).includes('chunked');
  }
  const rest = bytes.subarray(headEnd + HEAD_END.length);
  const code = Number(status[1]);
  if (chunked) return dechunk(rest, closed, code);
  if (length === undefined) return closed ? { status: code, body: rest } : undefined;
  if (rest.length >= length) return { status: code, body: rest.subarray(0, length) };
  return closed ? new Error(`a body of ${rest.length} bytes where Content-Length said ${length}`) : undefined;
}

function dechunk(bytes: Buffer, closed: boolean, status: number): ControlReplyBytes | Error | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = /^([0-9a-fA-F]{1,8})(?:;.*)?$/.exec(bytes.toString('latin1', at, lineEnd));
    if (!size) return new Error(`a chunk size of ${JSON.stringify(bytes.toString('latin1', at, Math.min(lineEnd, at + 20)))}`);
    const n = parseInt(size[1]!, 16);
    // The last chunk; trailers, if any, are not ours to read.
    if (n === 0) return { status, body: Buffer.concat(parts) };
    const start = lineEnd + 2;
    if (bytes.length < start + n + 2) break;
    parts.push(bytes.subarray(start, start + n));
    at = start + n + 2;
  }
  return closed ? new Error('a chunked body cut short') : undefined;
}
