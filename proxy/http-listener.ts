/** An HTTP listener's server: timeouts against slow clients, parser errors as 400/431 answers, requests and upgrades. */
import http from 'node:http';
import type net from 'node:net';
import type { HttpListenerConfig } from './config-schema.ts';
import { createRequestHandler, type HttpContext } from './http-forward.ts';
import type { ListenerStats } from './proxy-stats.ts';
import { clientErrorStatus, replyRaw } from './responses.ts';
import { createUpgradeHandler } from './upgrade.ts';

/** `make` builds the server from the HTTP options (an HTTPS or HTTP/2 server for a TLS listener). */
export function createHttpServer<S extends net.Server = http.Server>(
  config: HttpListenerConfig,
  ctx: HttpContext,
  cx: ListenerStats,
  make: (options: http.ServerOptions) => S = http.createServer as unknown as (options: http.ServerOptions) => S,
): S {
  const server = make({
    keepAliveTimeout: config.idle_timeout,
    headersTimeout: config.headers_timeout,
    requestTimeout: config.request_timeout,
    // Node checks header and request timeouts on this interval (30 s by default).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.headers_timeout / 2))),
    maxHeaderSize: config.max_header_size,
    noDelay: true,
  });
  (server as unknown as http.Server).timeout = config.stream_idle_timeout;
  server.on('request', createRequestHandler(ctx));
  server.on('upgrade', createUpgradeHandler(ctx));
  server.on('connection', (socket: net.Socket) => countConnection(cx, socket));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const status = clientErrorStatus(err);
    ctx.stats.rqRejected.inc();
    ctx.stats.rqClass[4]!.inc();
    const body = status === 431 ? 'request header fields too large' : status === 408 ? 'request timeout' : `bad request: ${err.code ?? err.message}`;
    ctx.accessLog.log({ listener: ctx.listener, status, bytes: 0, duration_ms: 0, error: body });
    replyRaw(socket, status, body);
  });
  return server;
}

/** downstream_cx_total / downstream_cx_active for one accepted connection. */
export function countConnection(cx: ListenerStats, socket: net.Socket): void {
  cx.cxTotal.inc();
  cx.cxActive.inc();
  socket.once('close', () => cx.cxActive.dec());
}
