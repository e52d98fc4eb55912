/**
 * The host and path a request is routed by (RFC 9112 §3.2): origin-form (`/path`) with its Host
 * field, or absolute-form (`http://host/path`), whose authority replaces the Host field (§3.2.2)
 * and which goes upstream in origin-form. A request with more than one Host field line or an
 * invalid one is refused (§3.2: a server MUST answer 400), as is any other request-target.
 */

import { isFieldName } from './field-name.ts';

/** Where a request goes, or why it is refused (a 400). */
export type Target =
  | { host: string | undefined; path: string; /** Host to send upstream in place of the client's (absolute-form). */ rewriteHost?: string }
  | { error: string };

// RFC 3986 authority without userinfo: reg-name or IP-literal, optional port.
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;
const ABSOLUTE = /^https?:\/\/([^/?#]*)([^#]*)$/i;

/** The Host value last found valid: nearly every request of a listener carries the same one, so the RegExp is run once for it. */
let lastValidHost: string | undefined;

/** What requestTarget reads of a request (an http.IncomingMessage). */
export interface RequestHead {
  method?: string | undefined;
  url?: string | undefined;
  httpVersionMajor: number;
  httpVersionMinor: number;
  rawHeaders: readonly string[];
}

/**
 * The routing target of a request. Node's parser takes any `HTTP/d.d` (and a request line with
 * no version as HTTP/0.9); only 1.0 and 1.1 are HTTP/1 requests this proxy can forward.
 */
export function requestTarget(req: RequestHead): Target {
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) return { error: `unsupported HTTP version ${req.httpVersionMajor}.${req.httpVersionMinor} (HTTP/1.0 and HTTP/1.1 only)` };
  const method = req.method;
  const url = req.url ?? '/';
  const raw = req.rawHeaders;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!isFieldName(name, 'host')) continue;
    if (host !== undefined) return { error: 'duplicate Host header' };
    host = raw[i + 1]!;
  }
  if (host !== undefined && host !== lastValidHost) {
    if (!AUTHORITY.test(host)) return { error: `invalid Host header '${printable(host)}'` };
    lastValidHost = host;
  }
  if (url.startsWith('/')) return { host, path: url };
  const absolute = ABSOLUTE.exec(url);
  if (absolute) {
    const authority = absolute[1]!;
    if (authority === '' || !AUTHORITY.test(authority)) return { error: `invalid authority in request target '${printable(url)}'` };
    const rest = absolute[2]!;
    const path = rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`;
    return { host: authority, path, rewriteHost: authority };
  }
  if (url === '*' && method === 'OPTIONS') return { host, path: url };
  return { error: `request target '${printable(url)}' is neither a path (/…) nor an absolute http URL` };
}

/** At most 100 characters of `text` with control and non-ASCII bytes escaped, for an error message. */
function printable(text: string): string {
  const short = text.length > 100 ? `${text.slice(0, 100)}…` : text;
  return short.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
