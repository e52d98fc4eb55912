/**
 * Forwarding one HTTP request: route, take a slot in the cluster, pick an endpoint, stream the
 * body up and the response down (upstream-attempt.ts: the lean client or undici's dispatch,
 * backpressure both ways, nothing buffered whole), retry once on another endpoint when the
 * request never reached the first.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { AccessLog } from '../telemetry/access-log.ts';
import type { Cluster, Release } from '../upstream/cluster.ts';
import { requestIdOf } from './headers.ts';
import { statusClass, type HttpStats } from '../telemetry/proxy-stats.ts';
import { requestTarget } from './request-target.ts';
import { reply } from './responses.ts';
import type { Route, Router } from './router.ts';
import { Attempt, type Forwarding } from '../upstream/upstream-attempt.ts';

export interface HttpContext {
  listener: string;
  router: Router;
  clusters: ReadonlyMap<string, Cluster>;
  stats: HttpStats;
  accessLog: AccessLog;
  streamIdleTimeout: number;
  healthPath?: string;
  /** True after /healthcheck/fail: the health path answers 503. */
  healthFailing(): boolean;
  /** X-Forwarded-Proto: `https` on a TLS listener. @default http */
  proto?: 'http' | 'https';
}

/** Where a response finds its Outcome when it closes (one shared 'close' listener, not a closure per request). */
const OUTCOME = Symbol('outcome');
type Tracked = http.ServerResponse & { [OUTCOME]: Outcome };

/**
 * One request from its arrival to its response's 'close': what its access log line says, and what
 * its upstream attempts read of it (Forwarding) — one object per request, in place of a closure,
 * an options object and a header list.
 */
class Outcome implements Forwarding {
  readonly ctx: HttpContext;
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly start: number;
  readonly requestId: string;
  readonly proto: 'http' | 'https';
  bytes = 0;
  upstream: string | undefined = undefined;
  cluster: string | undefined = undefined;
  error: string | undefined = undefined;
  attempt: { downstreamClosed(): void } | undefined = undefined;
  path = '';
  rewriteHost: string | undefined = undefined;
  hasBody = false;
  headersTimeout = 0;
  bodyTimeout = 0;
  options: Dispatcher.DispatchOptions | undefined = undefined;

  constructor(ctx: HttpContext, req: http.IncomingMessage, res: http.ServerResponse) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.start = performance.now();
    this.requestId = requestIdOf(req.rawHeaders);
    this.proto = ctx.proto ?? 'http';
  }

  closed(): void {
    const { ctx, res } = this;
    const { stats } = ctx;
    stats.rqActive.dec();
    const duration = performance.now() - this.start;
    const finished = res.writableFinished;
    if (finished) stats.rqClass[statusClass(res.statusCode)]!.inc();
    stats.rqTime.record(duration);
    if (ctx.accessLog.enabled) this.log(duration, finished);
    // An upstream exchange still going is aborted (one 'close' listener per request, not one more per attempt).
    this.attempt?.downstreamClosed();
  }

  private log(duration: number, finished: boolean): void {
    const { ctx, req, res } = this;
    ctx.accessLog.log({
      listener: ctx.listener,
      method: req.method,
      path: req.url,
      status: res.headersSent ? res.statusCode : 0,
      bytes: this.bytes,
      duration_ms: Math.round(duration * 1000) / 1000,
      ...(this.cluster !== undefined ? { cluster: this.cluster } : {}),
      ...(this.upstream !== undefined ? { upstream: this.upstream } : {}),
      request_id: this.requestId,
      ...(this.error !== undefined ? { error: this.error } : !finished ? { error: 'downstream closed before the response ended' } : {}),
    });
  }
}

// once, not on and a flag: that was a bind and a removeListener less per request, but about twice
// the bytes promoted to the old space per request (measured with --trace-gc), and so twice the major GCs.
function onClose(this: Tracked): void {
  this[OUTCOME].closed();
}

export function createRequestHandler(ctx: HttpContext): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { stats } = ctx;
  return (req, res) => {
    const outcome = new Outcome(ctx, req, res);
    stats.rqTotal.inc();
    stats.rqActive.inc();
    (res as Tracked)[OUTCOME] = outcome;
    res.once('close', onClose);
    const target = requestTarget(req);
    if ('error' in target) {
      stats.rqRejected.inc();
      outcome.error = target.error;
      // What follows a request this wrong is not trusted to be the next request.
      return reply(res, 400, `bad request: ${target.error}`, { connection: 'close' });
    }
    const url = target.path;
    if (ctx.healthPath !== undefined && url === ctx.healthPath) {
      if (ctx.healthFailing()) return reply(res, 503, 'failing (/healthcheck/fail)');
      return reply(res, 200, 'ok');
    }
    const route = ctx.router.match(target.host, url);
    if (!route) {
      stats.noRoute.inc();
      return reply(res, 404, `no route for ${target.host ?? ''}${url}`);
    }
    if (route.direct) {
      const { status, body, headers } = route.direct;
      outcome.bytes = Buffer.byteLength(body);
      res.writeHead(status, { 'content-length': outcome.bytes, ...headers });
      res.end(body);
      return;
    }
    const cluster = ctx.clusters.get(route.cluster as string) as Cluster;
    outcome.cluster = cluster.name;
    outcome.path = route.prefixRewrite !== undefined ? route.prefixRewrite + url.slice(route.prefix.length) : url;
    outcome.rewriteHost = target.rewriteHost;
    forward(cluster, route, outcome);
  };
}

function forward(cluster: Cluster, route: Route, outcome: Outcome): void {
  const slot = cluster.acquire();
  // A slot at once is the common case: no promise, no await, for it.
  if (typeof slot === 'function' || slot === undefined) return send(cluster, route, outcome, slot);
  void slot.then((release) => {
    if (release && outcome.res.destroyed) return release();
    send(cluster, route, outcome, release);
  });
}

const MAX_ATTEMPTS = 3;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

function send(cluster: Cluster, route: Route, outcome: Outcome, release: Release | undefined): void {
  const { req, res } = outcome;
  if (!release) {
    outcome.error = 'upstream overflow';
    return reply(res, 503, `upstream overflow: cluster ${cluster.name} has ${cluster.spec.max_connections} requests in flight and ${cluster.spec.max_pending_requests} waiting`);
  }
  const host = cluster.pick();
  if (!host) {
    release();
    outcome.error = 'no healthy upstream';
    return reply(res, 503, `no healthy upstream: every endpoint of cluster ${cluster.name} is failing its health checks`);
  }
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  outcome.hasBody = hasBody;
  outcome.headersTimeout = route.timeout ?? cluster.spec.timeout;
  outcome.bodyTimeout = outcome.ctx.streamIdleTimeout;
  // Without a body nothing is lost by trying again: a refused connect always, a reset under a
  // reused connection when the method is idempotent.
  const retryReset = !hasBody && IDEMPOTENT.has(req.method ?? 'GET');
  new Attempt(cluster, host, res, outcome, release, hasBody ? 1 : MAX_ATTEMPTS, retryReset).dispatch();
}
