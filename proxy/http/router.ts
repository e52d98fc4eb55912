/** Route matching for an HTTP listener: first route whose host and path prefix match. */
import type { RouteConfig } from '../config/config-schema.ts';

export interface Route {
  index: number;
  prefix: string;
  cluster?: string;
  direct?: { status: number; body: string; headers: Record<string, string> };
  prefixRewrite?: string;
  timeout?: number;
  /** Exact lower-cased hosts and `.suffix` wildcards; undefined matches any host. */
  hosts?: { exact: Set<string>; suffixes: string[] };
}

export class Router {
  readonly routes: Route[];

  constructor(config: readonly RouteConfig[]) {
    this.routes = config.map((r, index) => {
      const list = r.match.host === undefined ? undefined : Array.isArray(r.match.host) ? r.match.host : [r.match.host];
      const route: Route = { index, prefix: r.match.prefix };
      if (list) {
        const exact = new Set<string>();
        const suffixes: string[] = [];
        for (const h of list) {
          const lower = h.toLowerCase();
          if (lower === '*') return { ...route, ...rest(r) };
          if (lower.startsWith('*.')) suffixes.push(lower.slice(1));
          else exact.add(lower);
        }
        route.hosts = { exact, suffixes };
      }
      return { ...route, ...rest(r) };
    });
  }

  /** The route for `host` (Host header, port ignored) and `path` (the request target), or undefined. */
  match(host: string | undefined, path: string): Route | undefined {
    let name: string | undefined;
    for (const r of this.routes) {
      if (!path.startsWith(r.prefix)) continue;
      if (r.hosts) {
        name ??= hostName(host);
        if (!r.hosts.exact.has(name) && !r.hosts.suffixes.some((s) => name!.endsWith(s) && name!.length > s.length)) continue;
      }
      return r;
    }
    return undefined;
  }
}

function rest(r: RouteConfig): Partial<Route> {
  return {
    ...(r.cluster !== undefined ? { cluster: r.cluster } : {}),
    ...(r.direct_response ? { direct: r.direct_response } : {}),
    ...(r.prefix_rewrite !== undefined ? { prefixRewrite: r.prefix_rewrite } : {}),
    ...(r.timeout !== undefined ? { timeout: r.timeout } : {}),
  };
}

/** Host header without the port, lower-cased (`[::1]:80` → `[::1]`). */
export function hostName(host: string | undefined): string {
  if (!host) return '';
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}
