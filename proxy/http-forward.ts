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
import { LeanResponse } from './lean-response.ts';
import { downstreamRawHeaders, downstreamResponseHeaders, requestIdOf, upstreamRequestHeaders } from './headers.ts';
import { statusClass, type HttpStats } from './proxy-stats.ts';
import { requestTarget } from './request-target.ts';
import { isConnectFailure, isResetBeforeResponse, reply, upstreamErrorReply } from './responses.ts';
import type { Exchange, ExchangeHandler } from './upstream-h1.ts';
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
  /** The upstream attempt in flight, aborted when the downstream closes. */
  attempt?: { downstreamClosed(): void } | undefined;
}

function logRequest(ctx: HttpContext, req: http.IncomingMessage, res: http.ServerResponse, outcome: Outcome, duration: number, finished: boolean): void {
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
    // once, not on and a flag: that was a bind and a removeListener less per request, but about twice
    // the bytes promoted to the old space per request (measured with --trace-gc), and so twice the major GCs.
    res.once('close', () => {
      stats.rqActive.dec();
      const duration = performance.now() - outcome.start;
      const finished = res.writableFinished;
      if (finished) stats.rqClass[statusClass(res.statusCode)]!.inc();
      stats.rqTime.record(duration);
      if (ctx.accessLog.enabled) logRequest(ctx, req, res, outcome, duration, finished);
      // An upstream exchange still going is aborted (one 'close' listener per request, not one more per attempt).
      outcome.attempt?.downstreamClosed();
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

function forward(ctx: HttpContext, cluster: Cluster, route: Route, req: http.IncomingMessage, res: http.ServerResponse, outcome: Outcome, url: string, rewriteHost: string | undefined): void {
  const slot = cluster.acquire();
  // A slot at once is the common case: no promise, no await, for it.
  if (typeof slot === 'function' || slot === undefined) return send(ctx, cluster, route, req, res, outcome, url, rewriteHost, slot);
  void slot.then((release) => {
    if (release && res.destroyed) return release();
    send(ctx, cluster, route, req, res, outcome, url, rewriteHost, release);
  });
}

function send(ctx: HttpContext, cluster: Cluster, route: Route, req: http.IncomingMessage, res: http.ServerResponse, outcome: Outcome, url: string, rewriteHost: string | undefined, release: Release | undefined): void {
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
    headers: upstreamRequestHeaders(req.rawHeaders, { remoteAddress: req.socket.remoteAddress, proto: ctx.proto ?? 'http', requestId: outcome.requestId, host: rewriteHost }),
    body: hasBody ? req : null,
    headersTimeout: route.timeout ?? cluster.spec.timeout,
    bodyTimeout: ctx.streamIdleTimeout,
  };
  // Without a body nothing is lost by trying again: a refused connect always, a reset under a
  // reused connection when the method is idempotent.
  const retryReset = !hasBody && IDEMPOTENT.has(request.method);
  new Attempt(cluster, host, request, res, outcome, release, hasBody ? 1 : MAX_ATTEMPTS, retryReset).dispatch();
}

/**
 * One try of a request on one upstream host: a request without a body on a plain endpoint goes
 * through the host's lean HTTP/1.1 client (upstream-h1.ts, ExchangeHandler), any other through
 * undici (Dispatcher.DispatchHandler). A class rather than an object of closures: its methods are
 * not made again for every request.
 */
class Attempt implements Dispatcher.DispatchHandler, ExchangeHandler {
  private readonly cluster: Cluster;
  private readonly host: UpstreamHost;
  private readonly request: Dispatcher.DispatchOptions;
  private readonly res: http.ServerResponse;
  private readonly outcome: Outcome;
  private readonly release: Release;
  private readonly attemptsLeft: number;
  private readonly retryReset: boolean;
  private readonly t0: number;
  private started = false;
  private done = false;
  private controller: Dispatcher.DispatchController | undefined = undefined;
  private exchange: Exchange | undefined = undefined;
  private drainWait: (() => void) | undefined = undefined;
  /** The lean client's head corked the response: readDone uncorks it, at the end of the read it came in. */
  private corked = false;

  constructor(cluster: Cluster, host: UpstreamHost, request: Dispatcher.DispatchOptions, res: http.ServerResponse, outcome: Outcome, release: Release, attemptsLeft: number, retryReset: boolean) {
    this.cluster = cluster;
    this.host = host;
    this.request = request;
    this.res = res;
    this.outcome = outcome;
    this.release = release;
    this.attemptsLeft = attemptsLeft;
    this.retryReset = retryReset;
    cluster.stats.rqTotal.inc();
    host.active += 1;
    outcome.upstream = host.key;
    outcome.attempt = this;
    this.t0 = performance.now();
  }

  dispatch(): void {
    const { request, host } = this;
    if (host.h1 && request.body === null) {
      this.exchange = host.h1.request(request.method, request.path, request.headers as string[], request.headersTimeout!, request.bodyTimeout!, this);
    } else host.pool.dispatch(request, this);
  }

  /** The downstream closed: an exchange still going is aborted. */
  downstreamClosed(): void {
    if (this.done) return;
    if (this.exchange) {
      this.exchange.abort();
      this.finish();
      this.release();
    } else this.controller?.abort(new Error('downstream closed'));
  }

  // The lean client's handler.
  onHead(status: number, statusMessage: string, headers: string[]): void {
    this.head(status, statusMessage, downstreamRawHeaders(headers, this.outcome.requestId), true);
  }

  onData(chunk: Buffer, borrowed: boolean): boolean {
    this.outcome.bytes += chunk.length;
    // Only a LeanResponse tells whether it still holds a chunk (readDone); node:http's gets a copy.
    if (this.res.write(borrowed && !(this.res instanceof LeanResponse) ? Buffer.from(chunk) : chunk)) return true;
    this.res.once('drain', (this.drainWait ??= () => {
      if (!this.done) this.exchange?.resume();
    }));
    return false;
  }

  onEnd(trailers: string[] | undefined): void {
    this.finish();
    this.release();
    const res = this.res;
    if (trailers && trailers.length > 0 && res.chunkedEncoding) {
      const t: [string, string][] = [];
      for (let i = 0; i < trailers.length; i += 2) t.push([trailers[i]!, trailers[i + 1]!]);
      res.addTrailers(t);
    }
    res.end();
  }

  onError(err: NodeJS.ErrnoException): void {
    this.failed(err);
  }

  readDone(): boolean {
    const res = this.res;
    if (this.corked) {
      this.corked = false;
      res.uncork();
    }
    return res instanceof LeanResponse && (res as unknown as LeanResponse).holdsWrites();
  }

  private head(status: number, statusMessage: string | undefined, out: Record<string, string | string[]> | string[], lean = false): void {
    this.started = true;
    const { stats } = this.cluster;
    stats.rqTime.record(performance.now() - this.t0);
    stats.rqClass[statusClass(status)]!.inc();
    const res = this.res;
    if (res.destroyed) return;
    // Head, body and end of a small response usually arrive in one read: one write for all.
    res.cork();
    if (lean) this.corked = true;
    else process.nextTick(uncork, res);
    if (statusMessage) res.writeHead(status, statusMessage, out);
    else res.writeHead(status, out);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.host.active -= 1;
    if (this.outcome.attempt === this) this.outcome.attempt = undefined;
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
    if (this.res.destroyed) c.abort(new Error('downstream closed'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (status < 200) return;
    const out = downstreamResponseHeaders(headers);
    out['x-request-id'] ??= this.outcome.requestId;
    this.head(status, statusMessage, out);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.outcome.bytes += chunk.length;
    if (!this.res.write(chunk)) {
      c.pause();
      this.res.once('drain', (this.drainWait ??= () => c.resume()));
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.finish();
    this.release();
    const res = this.res;
    if (trailers && res.chunkedEncoding && Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
    res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
    this.failed(error as NodeJS.ErrnoException);
  }

  private failed(err: NodeJS.ErrnoException): void {
    if (this.done) return;
    this.finish();
    const { res, outcome, cluster } = this;
    if (this.started || res.headersSent || res.destroyed) {
      this.release();
      outcome.error = `upstream: ${err.code ?? err.message}`;
      res.destroy();
      return;
    }
    const connectFailed = isConnectFailure(err);
    if (this.attemptsLeft > 1 && (connectFailed || (this.retryReset && isResetBeforeResponse(err)))) {
      const next = cluster.pick(this.host);
      if (next) {
        cluster.stats.rqRetry.inc();
        new Attempt(cluster, next, this.request, res, outcome, this.release, this.attemptsLeft - 1, this.retryReset).dispatch();
        return;
      }
    }
    this.release();
    const answer = upstreamErrorReply(err);
    if (answer.timeout) cluster.stats.rqTimeout.inc();
    outcome.error = answer.body;
    reply(res, answer.status, answer.body);
  }
}
