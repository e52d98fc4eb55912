/**
 * The proxy's configuration: the `app:` key of Baton's YAML file (opaque to the supervisor),
 * keyed by the names of the file's top-level `listeners:`. Validated with valibot; every issue names
 * its path in the file.
 */
import * as v from 'valibot';
import { bytes as size, duration } from '../../shared/config-units.ts';
import { problemsOf, safeParse, strictObject, type SchemaProblem } from '../../shared/schema.ts';
import { appTls, downstreamTls, http2Options, upstreamTls } from '../tls/tls-schema.ts';

const name = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "." or "-"'));
const text = v.pipe(v.string(), v.minLength(1));
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
const pathOf = (what: string) => v.pipe(v.string(), v.regex(/^\//, `expected ${what} starting with "/"`));

const directResponse = strictObject({
  status: int(200, 599),
  body: v.optional(v.string(), ''),
  headers: v.optional(v.record(v.string(), v.string()), {}),
});

const route = v.pipe(
  strictObject({
    match: v.optional(
      strictObject({
        /** Host names (exact, case-insensitive, port ignored) or `*.suffix`; absent: any host. */
        host: v.optional(v.union([text, v.pipe(v.array(text), v.minLength(1))], 'expected a host name or a non-empty list of them')),
        prefix: v.optional(pathOf('a path prefix'), '/'),
      }),
      {},
    ),
    cluster: v.optional(name),
    direct_response: v.optional(directResponse),
    /** Replaces the matched prefix before the request goes upstream. */
    prefix_rewrite: v.optional(pathOf('a path')),
    /** Upstream response-headers timeout for this route (the cluster's `timeout` otherwise). */
    timeout: v.optional(duration),
  }),
  v.check((r) => (r.cluster === undefined) !== (r.direct_response === undefined), 'expected exactly one of cluster or direct_response'),
);

const httpListener = strictObject({
  protocol: v.literal('http'),
  routes: v.pipe(v.array(route), v.minLength(1, 'expected at least one route')),
  /** Keep-alive idle time between requests on a downstream connection. */
  idle_timeout: v.optional(duration, 60_000),
  /** Time a client has to send a request's headers. */
  headers_timeout: v.optional(duration, 10_000),
  /** Time a client has to send a whole request (0: no limit, for long uploads). */
  request_timeout: v.optional(duration, 0),
  /** A request or response that moves no byte for this long is cut. */
  stream_idle_timeout: v.optional(duration, 300_000),
  max_header_size: v.optional(size, 16 * 1024),
  /** A path the proxy answers itself: 200, or 503 after /healthcheck/fail on the admin listener. */
  health_path: v.optional(pathOf('a path')),
  /** Downstream TLS (HTTPS, and HTTP/2 by ALPN). */
  tls: v.optional(downstreamTls),
  http2: v.optional(http2Options),
});

const tcpListener = strictObject({
  protocol: v.literal('tcp'),
  cluster: name,
  /** A stream that moves no byte for this long is closed. */
  idle_timeout: v.optional(duration, 3_600_000),
  /** Downstream TLS: terminated here, the cleartext goes to the cluster. */
  tls: v.optional(downstreamTls),
});

const healthCheck = strictObject({
  /** HTTP GET path; without it the check is a TCP connect. */
  path: v.optional(pathOf('a path')),
  interval: v.optional(duration, 5_000),
  timeout: v.optional(duration, 1_000),
  healthy_threshold: v.optional(int(1), 2),
  unhealthy_threshold: v.optional(int(1), 2),
  /** Statuses that count as healthy. @default 200-299 */
  expected_statuses: v.optional(v.array(int(100, 599))),
});

const cluster = strictObject({
  endpoints: v.pipe(v.array(text), v.minLength(1, 'expected at least one endpoint')),
  lb_policy: v.optional(v.picklist(['round_robin', 'least_request']), 'round_robin'),
  connect_timeout: v.optional(duration, 5_000),
  /** Time the upstream has to send response headers: 504 after it. */
  timeout: v.optional(duration, 15_000),
  /** How long an idle upstream connection is kept for reuse. */
  idle_timeout: v.optional(duration, 30_000),
  /** Upstream connections carrying a request at once, across the cluster. */
  max_connections: v.optional(int(1), 1024),
  /** Requests waiting for one of those connections; beyond this: 503. */
  max_pending_requests: v.optional(int(0), 1024),
  health_check: v.optional(healthCheck),
  /** TLS to the endpoints. */
  tls: v.optional(upstreamTls),
});

export const appSchema = strictObject({
  listeners: v.record(name, v.variant('protocol', [httpListener, tcpListener], 'expected protocol: http or tcp')),
  clusters: v.optional(v.record(name, cluster), {}),
  admin: v.optional(
    strictObject({
      listener: name,
      /** The admin listener must be a loopback or Unix address unless this is true. */
      allow_non_loopback: v.optional(v.boolean(), false),
      /** A file (owner-only, mode 0600) whose token a TCP admin listener's POSTs must carry as `Authorization: Bearer`. */
      token_file: v.optional(text),
    }),
  ),
  access_log: v.optional(
    strictObject({
      enabled: v.optional(v.boolean(), true),
      /** `stdout`, `stderr` or a file path (relative to the config file). */
      path: v.optional(v.string(), 'stdout'),
    }),
    {},
  ),
  tls: v.optional(appTls, {}),
});

/** What the proxy reads of the whole file: the listener names and addresses, and `app:`. */
export const fileSchema = v.looseObject({
  listeners: v.optional(v.array(v.looseObject({ name: v.optional(v.string()), address: v.string() })), []),
  app: appSchema,
});

/** `raw` (a parsed file) checked against fileSchema: its output, or every problem with its path. */
export function checkFile(raw: unknown): { success: true; output: v.InferOutput<typeof fileSchema> } | { success: false; problems: SchemaProblem[] } {
  const result = safeParse(fileSchema, raw);
  return result.success ? { success: true, output: result.output } : { success: false, problems: problemsOf(result.issues) };
}

export type AppConfig = v.InferOutput<typeof appSchema>;
export type HttpListenerConfig = v.InferOutput<typeof httpListener>;
export type TcpListenerConfig = v.InferOutput<typeof tcpListener>;
export type RouteConfig = v.InferOutput<typeof route>;
export type ClusterConfig = v.InferOutput<typeof cluster>;
export type HealthCheckConfig = v.InferOutput<typeof healthCheck>;
