/**
 * Forwarding one HTTP request: route, take a slot in the cluster, pick an endpoint, stream the
 * body up and the response down through undici's dispatch (backpressure both ways, nothing
 * buffered whole), retry once on another endpoint when the request never reached the first.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { AccessLog } from './access-log.ts';
import type { Cluster, Release, UpstreamHost } from './cluster.ts';
import { downstreamResponseHeaders, requestIdOf, upstreamRequestHeaders } from './headers.ts';
import { statusClass, type HttpStats } from './proxy-stats.ts';
import { requestTarget } from './request-target.ts';
import { isConnectFailure, isResetBeforeResponse, reply, upstreamErrorReply } from './responses.ts';
import type { Route, Router } from './router.ts';

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

/** What the access log line of a request says. */
interface Outcome {
  start: number;
  requestId: string;
  bytes: number;
  upstream?: string;
  cluster?: string;
  error?: string;
}

const MAX_ATTEMPTS = 3;

function uncork(res: http.ServerResponse): void {
  res.uncork();
}
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function createRequestHandler(ctx: HttpContext): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { stats } = ctx;
  return (req, res) => {
    const outcome: Outcome = { start: performance.now(), requestId: requestIdOf(req.rawHeaders), bytes: 0 };
    stats.rqTotal.inc();
    stats.rqActive.inc();
    res.once('close', () => {
      stats.rqActive.dec();
      const duration = performance.now() - outcome.start;
      const finished = res.writableFinished;
      if (finished) stats.rqClass[statusClass(res.statusCode)]!.inc();
      stats.rqTime.record(duration);
      ctx.accessLog.log({
        listener: ctx.listener,
        method: req.method,
        path: req.url,
        status: res.headersSent ? res.statusCode : 0,
        bytes: outcome.bytes,
        duration_ms: Math.round(duration * 1000) / 1000,
        ...(outcome.cluster !== undefined ? { cluster: outcome.cluster } : {}),
        ...(outcome.upstream !== undefined ? { upstream: outcome.upstream } : {}),
        request_id: outcome.requestId,
        ...(outcome.error !== undefined ? { error: outcome.error } : !finished ? { error: 'downstream closed before the response ended' } : {}),
      });
    });
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
    void forward(ctx, cluster, route, req, res, outcome, url, target.rewriteHost);
  };
}

async function forward(ctx: HttpContext, cluster: Cluster, route: Route, req: http.IncomingMessage, res: http.ServerResponse, outcome: Outcome, url: string, rewriteHost: string | undefined): Promise<void> {
  const slot = cluster.acquire();
  let release: Release | undefined;
  if (typeof slot === 'function' || slot === undefined) release = slot;
  else {
    release = await slot;
    if (release && res.destroyed) return release();
  }
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
  const path = route.prefixRewrite !== undefined ? route.prefixRewrite + url.slice(route.prefix.length) : url;
  const request: Dispatcher.DispatchOptions = {
    path,
    method: req.method ?? 'GET',
    headers: upstreamRequestHeaders(req.rawHeaders, { remoteAddress: req.socket.remoteAddress, proto: ctx.proto ?? 'http', requestId: outcome.requestId, ...(rewriteHost !== undefined ? { host: rewriteHost } : {}) }),
    body: hasBody ? req : null,
    headersTimeout: route.timeout ?? cluster.spec.timeout,
    bodyTimeout: ctx.streamIdleTimeout,
  };
  // Without a body nothing is lost by trying again: a refused connect always, a reset under a
  // reused connection when the method is idempotent.
  const retryReset = !hasBody && IDEMPOTENT.has(request.method);
  attempt(cluster, host, request, res, outcome, release, hasBody ? 1 : MAX_ATTEMPTS, retryReset);
}

function attempt(
  cluster: Cluster,
  host: UpstreamHost,
  request: Dispatcher.DispatchOptions,
  res: http.ServerResponse,
  outcome: Outcome,
  release: Release,
  attemptsLeft: number,
  retryReset: boolean,
): void {
  const { stats } = cluster;
  stats.rqTotal.inc();
  host.active += 1;
  outcome.upstream = host.key;
  const t0 = performance.now();
  let started = false;
  let done = false;
  let controller: Dispatcher.DispatchController | undefined;
  const finish = (): void => {
    if (done) return;
    done = true;
    host.active -= 1;
    res.off('close', onClose);
  };
  const onClose = (): void => {
    if (!done) controller?.abort(new Error('downstream closed'));
  };
  res.once('close', onClose);
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (res.destroyed) c.abort(new Error('downstream closed'));
    },
    onResponseStart(_c, status, headers, statusMessage) {
      if (status < 200) return;
      started = true;
      stats.rqTime.record(performance.now() - t0);
      stats.rqClass[statusClass(status)]!.inc();
      const out = downstreamResponseHeaders(headers as Record<string, string | string[]>);
      out['x-request-id'] ??= outcome.requestId;
      if (res.destroyed) return;
      // Head, body and end of a small response usually arrive in one read: one write for all.
      res.cork();
      process.nextTick(uncork, res);
      if (statusMessage) res.writeHead(status, statusMessage, out);
      else res.writeHead(status, out);
    },
    onResponseData(c, chunk) {
      outcome.bytes += chunk.length;
      if (!res.write(chunk)) {
        c.pause();
        res.once('drain', () => c.resume());
      }
    },
    onResponseEnd(_c, trailers) {
      finish();
      release();
      if (trailers && Object.keys(trailers).length > 0 && res.chunkedEncoding) res.addTrailers(trailers as Record<string, string>);
      res.end();
    },
    onResponseError(_c, error) {
      finish();
      const err = error as NodeJS.ErrnoException;
      if (started || res.headersSent || res.destroyed) {
        release();
        outcome.error = `upstream: ${err.code ?? err.message}`;
        res.destroy();
        return;
      }
      const connectFailed = isConnectFailure(err);
      if (attemptsLeft > 1 && (connectFailed || (retryReset && isResetBeforeResponse(err)))) {
        const next = cluster.pick(host);
        if (next) {
          stats.rqRetry.inc();
          attempt(cluster, next, request, res, outcome, release, attemptsLeft - 1, retryReset);
          return;
        }
      }
      release();
      const answer = upstreamErrorReply(err);
      if (answer.timeout) stats.rqTimeout.inc();
      outcome.error = answer.body;
      reply(res, answer.status, answer.body);
    },
  };
  host.pool.dispatch(request, handler);
}
