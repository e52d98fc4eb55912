/**
 * An app's `import http from 'node:http'` builds node:http's ES namespace, which reads every export,
 * and three of them (WebSocket, CloseEvent, MessageEvent) are getters that load Node's undici, and
 * with it tls, http2 and zlib: about 35 ms of CPU on this project's machine and some 6 MiB, at every
 * generation's start, for client classes a server rarely uses (nodejs/node#59686, #57649). Made
 * non-enumerable before the app's first import, they are left out of the namespace and stay lazy:
 * `http.WebSocket` and the global `WebSocket` load them when used. What changes is a named
 * `import { WebSocket } from 'node:http'`, which Node then refuses when the app starts (a failed
 * reload: the serving generation carries on); `BATON_HTTP_EXPORTS=all` in the generation's
 * environment keeps Node's own namespace.
 */

/** node:http's exports that are getters loading undici (Node >= 22.5). */
const UNDICI_GETTERS = ['WebSocket', 'CloseEvent', 'MessageEvent'] as const;
/** Set to `all` in a generation's environment: node:http's ES namespace as Node builds it. */
export const HTTP_EXPORTS_ENV = 'BATON_HTTP_EXPORTS';

/**
 * Hides node:http's undici getters from its ES namespace unless `BATON_HTTP_EXPORTS=all`; returns
 * the names hidden. Must run before the process's first ES import of node:http: a namespace, once
 * built, keeps its names.
 */
export function hideUndiciExports(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env[HTTP_EXPORTS_ENV] === 'all') return [];
  const http = process.getBuiltinModule('node:http') as unknown as Record<string, unknown>;
  const hidden: string[] = [];
  for (const name of UNDICI_GETTERS) {
    const d = Object.getOwnPropertyDescriptor(http, name);
    // Only Node's lazy getter: a plain value (another Node, or the app's own patch) is left as it is.
    if (d?.get === undefined || !d.enumerable || !d.configurable) continue;
    Object.defineProperty(http, name, { ...d, enumerable: false });
    hidden.push(name);
  }
  return hidden;
}
