/**
 * The proxy's configuration: the `app:` key of Baton's YAML file (opaque to the supervisor),
 * keyed by the names of the file's top-level `listeners:`. Validated with zod; every issue names
 * its path in the file.
 */
import { z } from 'zod';
import { bytes as size, duration } from '../shared/config-units.ts';
import { appTls, downstreamTls, http2Options, upstreamTls } from './tls/tls-schema.ts';

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "." or "-"');

const directResponse = z.strictObject({
  status: z.number().int().min(200).max(599),
  body: z.string().default(''),
  headers: z.record(z.string(), z.string()).default({}),
});

const route = z
  .strictObject({
    match: z
      .strictObject({
        /** Host names (exact, case-insensitive, port ignored) or `*.suffix`; absent: any host. */
        host: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
        prefix: z.string().regex(/^\//, 'expected a path prefix starting with "/"').default('/'),
      })
      .prefault({}),
    cluster: name.optional(),
    direct_response: directResponse.optional(),
    /** Replaces the matched prefix before the request goes upstream. */
    prefix_rewrite: z.string().regex(/^\//, 'expected a path starting with "/"').optional(),
    /** Upstream response-headers timeout for this route (the cluster's `timeout` otherwise). */
    timeout: duration.optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.cluster === undefined) === (r.direct_response === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'expected exactly one of cluster or direct_response' });
    }
  });

const httpListener = z.strictObject({
  protocol: z.literal('http'),
  routes: z.array(route).min(1, 'expected at least one route'),
  /** Keep-alive idle time between requests on a downstream connection. */
  idle_timeout: duration.default(60_000),
  /** Time a client has to send a request's headers. */
  headers_timeout: duration.default(10_000),
  /** Time a client has to send a whole request (0: no limit, for long uploads). */
  request_timeout: duration.default(0),
  /** A request or response that moves no byte for this long is cut. */
  stream_idle_timeout: duration.default(300_000),
  max_header_size: size.default(16 * 1024),
  /** A path the proxy answers itself: 200, or 503 after /healthcheck/fail on the admin listener. */
  health_path: z.string().regex(/^\//).optional(),
  /** Downstream TLS (HTTPS, and HTTP/2 by ALPN). */
  tls: downstreamTls.optional(),
  http2: http2Options.optional(),
});

const tcpListener = z.strictObject({
  protocol: z.literal('tcp'),
  cluster: name,
  /** A stream that moves no byte for this long is closed. */
  idle_timeout: duration.default(3_600_000),
  /** Downstream TLS: terminated here, the cleartext goes to the cluster. */
  tls: downstreamTls.optional(),
});

const healthCheck = z.strictObject({
  /** HTTP GET path; without it the check is a TCP connect. */
  path: z.string().regex(/^\//, 'expected a path starting with "/"').optional(),
  interval: duration.default(5_000),
  timeout: duration.default(1_000),
  healthy_threshold: z.number().int().min(1).default(2),
  unhealthy_threshold: z.number().int().min(1).default(2),
  /** Statuses that count as healthy. @default 200-299 */
  expected_statuses: z.array(z.number().int().min(100).max(599)).optional(),
});

const cluster = z.strictObject({
  endpoints: z.array(z.string().min(1)).min(1, 'expected at least one endpoint'),
  lb_policy: z.enum(['round_robin', 'least_request']).default('round_robin'),
  connect_timeout: duration.default(5_000),
  /** Time the upstream has to send response headers: 504 after it. */
  timeout: duration.default(15_000),
  /** How long an idle upstream connection is kept for reuse. */
  idle_timeout: duration.default(30_000),
  /** Upstream connections carrying a request at once, across the cluster. */
  max_connections: z.number().int().min(1).default(1024),
  /** Requests waiting for one of those connections; beyond this: 503. */
  max_pending_requests: z.number().int().min(0).default(1024),
  health_check: healthCheck.optional(),
  /** TLS to the endpoints. */
  tls: upstreamTls.optional(),
});

export const appSchema = z.strictObject({
  listeners: z.record(name, z.discriminatedUnion('protocol', [httpListener, tcpListener], {
    error: 'expected protocol: http or tcp',
  })),
  clusters: z.record(name, cluster).default({}),
  admin: z
    .strictObject({
      listener: name,
      /** The admin listener must be a loopback or Unix address unless this is true. */
      allow_non_loopback: z.boolean().default(false),
      /** A file (owner-only, mode 0600) whose token a TCP admin listener's POSTs must carry as `Authorization: Bearer`. */
      token_file: z.string().min(1).optional(),
    })
    .optional(),
  access_log: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** `stdout`, `stderr` or a file path (relative to the config file). */
      path: z.string().default('stdout'),
    })
    .prefault({}),
  tls: appTls.prefault({}),
});

/** What the proxy reads of the whole file: the listener names and addresses, and `app:`. */
export const fileSchema = z.looseObject({
  listeners: z.array(z.looseObject({ name: z.string().optional(), address: z.string() })).default([]),
  app: appSchema,
});

export type AppConfig = z.output<typeof appSchema>;
export type HttpListenerConfig = z.output<typeof httpListener>;
export type TcpListenerConfig = z.output<typeof tcpListener>;
export type RouteConfig = z.output<typeof route>;
export type ClusterConfig = z.output<typeof cluster>;
export type HealthCheckConfig = z.output<typeof healthCheck>;
