/** An HTTP listener's server: timeouts against slow clients, parser errors as 400/431 answers, CONNECT refused (405), requests and upgrades. */
import type http from 'node:http';
import type net from 'node:net';
import type { HttpListenerConfig } from '../config/config-schema.ts';
import { installLeanPath } from './downstream-h1.ts';
import { createRequestHandler, type HttpContext } from './http-forward.ts';
import type { ListenerStats } from '../telemetry/proxy-stats.ts';
import { clientErrorStatus, replyRaw } from './responses.ts';
import { createUpgradeHandler } from './upgrade.ts';

// node:http through getBuiltinModule, not an ES import: that reads its lazy exports (http.WebSocket…),
// which load Node's own undici, http2 and tls into every generation (~40 ms of its start).
const { createServer } = process.getBuiltinModule('node:http');

/**
 * Whether a plain HTTP listener serves bodiless HTTP/1.1 requests on the lean path
 * (downstream-h1.ts); `BATON_PROXY_DOWNSTREAM=node` leaves every request to node:http.
 */
export function leanDownstream(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.BATON_PROXY_DOWNSTREAM !== 'node';
}

/** `make` builds the server from the HTTP options (an HTTPS or HTTP/2 server for a TLS listener). */
export function createHttpServer<S extends net.Server = http.Server>(
  config: HttpListenerConfig,
  ctx: HttpContext,
  cx: ListenerStats,
  make: (options: http.ServerOptions) => S = createServer as unknown as (options: http.ServerOptions) => S,
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
  // Plain listeners only (a TLS one brings its own `make`): before any other 'connection' listener, it takes node:http's place.
  if (make === (createServer as unknown) && leanDownstream()) {
    installLeanPath(server as unknown as http.Server, {
      headersTimeout: config.headers_timeout,
      keepAliveTimeout: config.idle_timeout,
      streamIdleTimeout: config.stream_idle_timeout,
      maxHeaderSize: config.max_header_size,
      onHandOver: () => cx.cxFallback.inc(),
    });
  }
  server.on('request', createRequestHandler(ctx));
  server.on('upgrade', createUpgradeHandler(ctx));
  server.on('connection', (socket: net.Socket) => countConnection(cx, socket));
  // Without a listener Node drops a CONNECT without a word; other proxies refuse it.
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
    ctx.stats.rqTotal.inc();
    ctx.stats.rqClass[4]!.inc();
    ctx.accessLog.log({ listener: ctx.listener, method: req.method, path: req.url, status: 405, bytes: 0, duration_ms: 0, error: 'CONNECT is not supported' });
    socket.on('error', () => {});
    replyRaw(socket, 405, 'CONNECT is not supported by this proxy');
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    // A parse error inside a body comes with the request's response pending: while none of it is
    // written the client can still be told (as other proxies do), and the upstream exchange is
    // cut by closing the connection once the answer is out.
    const pending = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
      socket.destroy();
      return;
    }
    if (pending) socket.once('finish', () => socket.destroy());
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
