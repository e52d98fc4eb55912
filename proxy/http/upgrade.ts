/**
 * Upgrade (WebSocket) pass-through: the handshake goes to an endpoint over a connection of its
 * own, and from then on bytes are piped both ways untouched until either side closes. When the
 * generation drains these connections stay until Baton's drain timeout.
 */
import type http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Cluster } from '../upstream/cluster.ts';
import type { HttpContext } from './http-forward.ts';
import { requestHead, requestIdOf, upstreamRequestHeaders } from './headers.ts';
import { requestTarget } from './request-target.ts';
import { replyRaw } from './responses.ts';

export function createUpgradeHandler(ctx: HttpContext): (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, downstream, head) => {
    const start = performance.now();
    const requestId = requestIdOf(req.rawHeaders);
    ctx.stats.rqTotal.inc();
    const target = requestTarget(req);
    const url = 'error' in target ? (req.url ?? '/') : target.path;
    const log = (status: number, extra: { upstream?: string; cluster?: string; error?: string; bytes?: number }): void => {
      ctx.stats.rqClass[Math.floor(status / 100)]?.inc();
      ctx.accessLog.log({ listener: ctx.listener, method: req.method, path: url, status, bytes: extra.bytes ?? 0, duration_ms: Math.round(performance.now() - start), request_id: requestId, ...extra });
    };
    if ('error' in target) {
      ctx.stats.rqRejected.inc();
      log(400, { error: target.error });
      replyRaw(downstream as net.Socket, 400, `bad request: ${target.error}`);
      return;
    }
    const route = ctx.router.match(target.host, url);
    if (!route || !route.cluster) {
      ctx.stats.noRoute.inc();
      log(404, { error: 'no route for upgrade' });
      replyRaw(downstream as net.Socket, 404, 'no route');
      return;
    }
    const cluster = ctx.clusters.get(route.cluster) as Cluster;
    const host = cluster.pick();
    if (!host) {
      log(503, { cluster: cluster.name, error: 'no healthy upstream' });
      replyRaw(downstream as net.Socket, 503, `no healthy upstream: every endpoint of cluster ${cluster.name} is failing its health checks`);
      return;
    }
    const e = host.endpoint;
    cluster.stats.rqTotal.inc();
    const upstream = e.kind === 'unix' ? net.connect(e.path) : net.connect(e.port, e.host);
    upstream.setNoDelay(true);
    const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), cluster.spec.connect_timeout);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      cluster.stats.cxTotal.inc();
      cluster.stats.cxActive.inc();
      const path = route.prefixRewrite !== undefined ? route.prefixRewrite + url.slice(route.prefix.length) : url;
      const headers = upstreamRequestHeaders(req.rawHeaders, { remoteAddress: req.socket.remoteAddress, proto: ctx.proto ?? 'http', requestId, upgrade: true, ...(target.rewriteHost !== undefined ? { host: target.rewriteHost } : {}) });
      upstream.write(requestHead(req.method ?? 'GET', path, headers));
      if (head.length > 0) upstream.write(head);
      downstream.pipe(upstream);
      upstream.pipe(downstream);
    });
    let bytes = 0;
    upstream.on('data', (c: Buffer) => (bytes += c.length));
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (!connected) {
        cluster.stats.cxConnectFail.inc();
        log(503, { cluster: cluster.name, upstream: host.key, error: `upstream connect error: ${err.code ?? err.message}` });
        replyRaw(downstream as net.Socket, 503, `upstream connect error: ${err.code ?? err.message}`);
      } else downstream.destroy();
    });
    upstream.once('close', () => {
      if (!connected) return;
      cluster.stats.cxActive.dec();
      log(101, { cluster: cluster.name, upstream: host.key, bytes });
      downstream.end();
    });
    downstream.on('error', () => upstream.destroy());
    downstream.once('close', () => upstream.destroy());
  };
}
