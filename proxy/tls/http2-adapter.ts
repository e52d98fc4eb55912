/**
 * Makes an HTTP/2 request (node:http2's compatibility API) look like the HTTP/1.1 request the
 * forwarding code handles, under the same header rules: pseudo-headers dropped, `:authority`
 * becomes Host (RFC 9113 §8.3.1), cookies split over several fields are joined again (§8.2.3),
 * and a body without Content-Length is marked as one (the upstream gets it chunked). The body
 * stays a stream: HTTP/2 flow control holds the client while the upstream is slow.
 * Also puts a verified client certificate's subject into its header (HTTP/1.1 and HTTP/2).
 */
import type http from 'node:http';
import type http2 from 'node:http2';

type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;
type AnyResponse = http.ServerResponse | http2.Http2ServerResponse;

/** `subjectHeader`: lower-cased name; `subject`: the verified subject, undefined when none. */
export interface ClientIdentity {
  subjectHeader: string;
  subject: string | undefined;
}

/** Rewrites `req`/`res` in place before the request handler sees them. */
export function adaptRequest(req: AnyRequest, res: AnyResponse | undefined, identity: ClientIdentity | undefined): void {
  const h2 = (req as http2.Http2ServerRequest).stream !== undefined;
  if (!h2 && !identity) return;
  const raw = req.rawHeaders;
  const out: string[] = [];
  let authority: string | undefined;
  let cookies: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (h2) {
      if (name.charCodeAt(0) === 58 /* : */) {
        if (name === ':authority') authority = value;
        continue;
      }
      if (name === 'host') {
        authority ??= value;
        continue;
      }
      if (name === 'cookie') {
        (cookies ??= []).push(value);
        continue;
      }
    }
    if (identity && name.toLowerCase() === identity.subjectHeader) continue;
    out.push(name, value);
  }
  if (identity?.subject !== undefined) out.push(identity.subjectHeader, identity.subject);
  if (h2) {
    if (authority !== undefined) {
      out.unshift('host', authority);
      req.headers.host = authority;
    }
    if (cookies) out.push('cookie', cookies.join('; '));
    const r2 = req as http2.Http2ServerRequest;
    if (!r2.stream.endAfterHeaders && req.headers['content-length'] === undefined) req.headers['transfer-encoding'] = 'chunked';
    if (res) adaptResponse(res as http2.Http2ServerResponse);
    // From here on it is the HTTP/1.1 request that goes upstream (the checks for HTTP/1 requests apply).
    Object.defineProperties(req, { httpVersionMajor: { value: 1, configurable: true }, httpVersionMinor: { value: 1, configurable: true } });
  }
  Object.defineProperty(req, 'rawHeaders', { value: out, configurable: true, writable: true });
}

/** The few response members the forwarding code uses that HTTP/2's compatibility response lacks or treats otherwise. */
function adaptResponse(res: http2.Http2ServerResponse): void {
  Object.defineProperty(res, 'destroyed', { get: () => res.stream.destroyed, configurable: true });
  // HTTP/2 has no reason phrase (Node warns when given one); trailers always travel.
  const writeHead = res.writeHead.bind(res) as (status: number, headers?: http.OutgoingHttpHeaders) => unknown;
  // `Connection` (the proxy's own answers set `close`) is refused by HTTP/2: the session's GOAWAY does its job.
  const h2Headers = (h: http.OutgoingHttpHeaders | undefined): http.OutgoingHttpHeaders | undefined => {
    if (!h) return h;
    const out: http.OutgoingHttpHeaders = {};
    for (const k in h) if (k.toLowerCase() !== 'connection') out[k] = h[k];
    return out;
  };
  Object.assign(res, {
    chunkedEncoding: true,
    writeHead: (status: number, message?: string | http.OutgoingHttpHeaders, headers?: http.OutgoingHttpHeaders) =>
      writeHead(status, h2Headers(typeof message === 'string' ? headers : message)),
  });
}
