/**
 * Makes an HTTP/2 request (node:http2's compatibility API) look like the HTTP/1.1 request the
 * forwarding code handles, under the same header rules: pseudo-headers dropped, `:authority`
 * becomes Host (RFC 9113 §8.3.1), cookies split over several fields are joined again (§8.2.3),
 * and a body without Content-Length is marked as one (the upstream gets it chunked). The body
 * stays a stream: HTTP/2 flow control holds the client while the upstream is slow.
 * Also puts a verified client certificate's subject into its header (HTTP/1.1 and HTTP/2).
 *
 * The HTTP/2 server makes its requests and responses from the two classes below, which carry
 * what the forwarding code needs on their prototypes: defining it on every request (bound
 * closures, per-object accessors) cost 10–25 % of HTTP/2 throughput (`bench:tls`).
 */
import type http from 'node:http';
import http2 from 'node:http2';

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
    // A ProxyHttp2Request: the only kind the proxy's HTTP/2 server makes.
    (req as ProxyHttp2Request).replaceRawHeaders(out);
    return;
  }
  Object.defineProperty(req, 'rawHeaders', { value: out, configurable: true, writable: true });
}

/** Without `Connection` (the proxy's own answers set `close`), which HTTP/2 refuses: the session's GOAWAY does its job. */
function h2Headers(h: http.OutgoingHttpHeaders | undefined): http.OutgoingHttpHeaders | undefined {
  if (!h) return h;
  const out: http.OutgoingHttpHeaders = {};
  for (const k in h) if (k.toLowerCase() !== 'connection') out[k] = h[k];
  return out;
}

/** The HTTP/2 request class of the proxy: an HTTP/1.1 request from here on (it goes upstream as one), with raw headers that can be replaced. */
export class ProxyHttp2Request extends http2.Http2ServerRequest {
  #rawHeaders: string[] | undefined = undefined;
  /** What `rawHeaders` returns from now on. */
  replaceRawHeaders(value: string[]): void {
    this.#rawHeaders = value;
  }
  static {
    const base = Object.getOwnPropertyDescriptor(http2.Http2ServerRequest.prototype, 'rawHeaders')?.get as (this: http2.Http2ServerRequest) => string[];
    // Accessors over what @types/node declares as plain properties (a class accessor may not override those).
    Object.defineProperties(this.prototype, {
      rawHeaders: {
        configurable: true,
        get(this: ProxyHttp2Request): string[] {
          return this.#rawHeaders ?? base.call(this);
        },
      },
      httpVersionMajor: { configurable: true, get: () => 1 },
      httpVersionMinor: { configurable: true, get: () => 1 },
    });
  }
}

/** The HTTP/2 response class of the proxy: the few members the forwarding code uses that the compatibility response lacks or treats otherwise. */
export class ProxyHttp2Response extends http2.Http2ServerResponse<ProxyHttp2Request> {
  static {
    const writeHead = http2.Http2ServerResponse.prototype.writeHead as (this: http2.Http2ServerResponse, status: number, headers?: http.OutgoingHttpHeaders) => http2.Http2ServerResponse;
    Object.defineProperties(this.prototype, {
      destroyed: {
        configurable: true,
        get(this: http2.Http2ServerResponse): boolean {
          return this.stream.destroyed;
        },
      },
      // Trailers always travel on HTTP/2.
      chunkedEncoding: { configurable: true, value: true },
      // HTTP/2 has no reason phrase (Node warns when given one).
      writeHead: {
        configurable: true,
        writable: true,
        value(this: http2.Http2ServerResponse, status: number, message?: string | http.OutgoingHttpHeaders, headers?: http.OutgoingHttpHeaders) {
          return writeHead.call(this, status, h2Headers(typeof message === 'string' ? headers : message));
        },
      },
    });
  }
}
