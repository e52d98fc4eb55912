/**
 * One try of a forwarded request on one upstream host (http-forward.ts decides which and how many),
 * its response passed on downstream.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { Cluster, Release, UpstreamHost } from './cluster.ts';
import { LeanResponse } from '../http/lean-response.ts';
import { downstreamRawHeaders, downstreamResponseHeaders, upstreamRequestHeaders, upstreamRequestHead } from '../http/headers.ts';
import { statusClass } from '../telemetry/proxy-stats.ts';
import { isConnectFailure, isResetBeforeResponse, reply, upstreamErrorReply } from '../http/responses.ts';
import type { Exchange, ExchangeHandler } from './upstream-h1.ts';

/** The request an attempt forwards and what it reports of it (http-forward.ts's Outcome). */
export interface Forwarding {
  readonly req: http.IncomingMessage;
  readonly requestId: string;
  readonly proto: 'http' | 'https';
  /** The path sent upstream (a route's prefix rewrite applied). */
  readonly path: string;
  /** Host to send in place of the client's (an absolute-form target's authority). */
  readonly rewriteHost: string | undefined;
  readonly hasBody: boolean;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  /** undici's options for the request, made by the first attempt through undici. */
  options: Dispatcher.DispatchOptions | undefined;
  bytes: number;
  upstream: string | undefined;
  error: string | undefined;
  /** The upstream attempt in flight, aborted when the downstream closes. */
  attempt: { downstreamClosed(): void } | undefined;
}

function uncork(res: http.ServerResponse): void {
  res.uncork();
}

/** undici's options for `f`'s request. */
function dispatchOptions(f: Forwarding): Dispatcher.DispatchOptions {
  const req = f.req;
  return {
    path: f.path,
    method: req.method ?? 'GET',
    headers: upstreamRequestHeaders(req.rawHeaders, { remoteAddress: req.socket.remoteAddress, proto: f.proto, requestId: f.requestId, host: f.rewriteHost }),
    body: f.hasBody ? req : null,
    headersTimeout: f.headersTimeout,
    bodyTimeout: f.bodyTimeout,
  };
}

/**
 * One try of a request on one upstream host: a request without a body on a plain endpoint goes
 * through the host's lean HTTP/1.1 client (upstream-h1.ts, ExchangeHandler), any other through
 * undici (Dispatcher.DispatchHandler). A class rather than an object of closures: its methods are
 * not made again for every request.
 */
export class Attempt implements Dispatcher.DispatchHandler, ExchangeHandler {
  private readonly cluster: Cluster;
  private readonly host: UpstreamHost;
  private readonly res: http.ServerResponse;
  private readonly outcome: Forwarding;
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

  constructor(cluster: Cluster, host: UpstreamHost, res: http.ServerResponse, outcome: Forwarding, release: Release, attemptsLeft: number, retryReset: boolean) {
    this.cluster = cluster;
    this.host = host;
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
    const { outcome: f, host } = this;
    if (host.h1 && !f.hasBody) {
      // The head straight from the client's fields: no header list, no options object.
      const req = f.req;
      const method = req.method ?? 'GET';
      const head = upstreamRequestHead(method, f.path, req.rawHeaders, req.socket.remoteAddress, f.proto, f.requestId, f.rewriteHost, host.h1.hostField);
      this.exchange = host.h1.send(head, method === 'HEAD', f.headersTimeout, f.bodyTimeout, this, this.t0);
    } else host.pool.dispatch((f.options ??= dispatchOptions(f)), this);
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
  onHead(status: number, statusMessage: string, headers: string[], at: number): void {
    this.head(status, statusMessage, downstreamRawHeaders(headers, this.outcome.requestId), at, true);
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

  /** `at`: performance.now() when the head came. */
  private head(status: number, statusMessage: string | undefined, out: Record<string, string | string[]> | string[], at: number, lean = false): void {
    this.started = true;
    const { stats } = this.cluster;
    stats.rqTime.record(at - this.t0);
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
    this.head(status, statusMessage, out, performance.now());
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
        new Attempt(cluster, next, res, outcome, this.release, this.attemptsLeft - 1, this.retryReset).dispatch();
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
