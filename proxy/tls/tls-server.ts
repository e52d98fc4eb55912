/**
 * The servers of TLS listeners: HTTPS (HTTP/1.1) or HTTP/2 with HTTP/1.1 on the same port
 * (chosen by ALPN) for `http`, a TLS server whose cleartext goes to the cluster for `tcp`.
 * Certificates by SNI, client-certificate checks, handshake stats, HTTP/2 limits and stats.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import type { HttpListenerConfig } from '../config/config-schema.ts';
import type { HttpContext } from '../http/http-forward.ts';
import { createHttpServer } from '../http/http-listener.ts';
import type { ListenerStats } from '../telemetry/proxy-stats.ts';
import type { StatsStore } from '../telemetry/stats-store.ts';
import { oneLine } from './certificates.ts';
import { adaptRequest, ProxyHttp2Request, ProxyHttp2Response, type ClientIdentity } from './http2-adapter.ts';
import type { DownstreamTls } from './tls-load.ts';
import { handshakeErrorReason, http2Stats, tlsStats, type Http2Stats, type TlsStats } from './tls-stats.ts';

const MIB = 1024 * 1024;

/** The verified subject of each client, kept from its handshake for its requests. */
const subjects = new WeakMap<tls.TLSSocket, string>();

/** SNI selection, handshake stats and the client-certificate rule, on any TLS server. */
function instrument(server: tls.Server, material: DownstreamTls, stats: TlsStats): void {
  const clientAuth = material.config.client_auth;
  // Before the server's own listener: a refused client is gone before its first byte is read.
  server.prependListener('secureConnection', (socket: tls.TLSSocket) => {
    stats.handshake.inc();
    if (socket.isSessionReused()) stats.sessionReused.inc();
    const version = socket.getProtocol();
    if (version) stats.versions[version]?.inc();
    (stats.alpn[socket.alpnProtocol || 'none'] ?? stats.alpn.none)?.inc();
    if (!clientAuth) return;
    // Node checks client certificates here, after the handshake (rejectUnauthorized would close
    // the socket without a word): the rule and its counting live in one place.
    const peer = socket.getPeerX509Certificate();
    if (socket.authorized && peer) subjects.set(socket, oneLine(peer.subject));
    else if (peer) {
      stats.errors.bad_client_cert.inc();
      socket.destroy();
    } else if (clientAuth.required) {
      stats.errors.no_client_cert.inc();
      socket.destroy();
    }
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    stats.errors[handshakeErrorReason(err)].inc();
    socket.destroy();
  });
}

function sniCallback(material: DownstreamTls, stats: TlsStats): (name: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void {
  return (name, cb) => {
    const { context, match } = material.sni.select(name);
    stats.sni[match].inc();
    cb(null, context);
  };
}

export interface TlsHttpServer {
  server: net.Server;
  /** Counts the GOAWAY each open HTTP/2 session gets when the generation drains (the SDK sends them). */
  draining(): void;
}

/** The server of an `http` listener with `tls`. */
export function createTlsHttpServer(config: HttpListenerConfig, material: DownstreamTls, ctx: HttpContext, cx: ListenerStats, store: StatsStore): TlsHttpServer {
  const stats = tlsStats(store, ctx.listener, material.alpn);
  const tlsOptions: tls.TlsOptions = { ...material.serverOptions, SNICallback: sniCallback(material, stats) };
  const h2 = config.http2?.enabled ?? true;
  const context: HttpContext = { ...ctx, proto: 'https' };
  const identity = material.config.client_auth ? material.config.client_auth.subject_header.toLowerCase() : undefined;
  const sessions = new Set<http2.ServerHttp2Session>();
  let h2stats: Http2Stats | undefined;
  const server = createHttpServer(config, context, cx, (options) => {
    if (!h2) return https.createServer({ ...tlsOptions, ...options });
    const h2config = config.http2;
    const s = http2.createSecureServer({
      ...tlsOptions,
      allowHTTP1: true,
      Http2ServerRequest: ProxyHttp2Request,
      Http2ServerResponse: ProxyHttp2Response,
      maxSessionMemory: Math.max(1, Math.round((h2config?.max_session_memory ?? 10 * MIB) / MIB)),
      settings: {
        maxConcurrentStreams: h2config?.max_concurrent_streams ?? 100,
        maxHeaderListSize: h2config?.max_header_list_size ?? config.max_header_size,
        initialWindowSize: h2config?.initial_window_size ?? 65_535,
        enablePush: false,
      },
    });
    // The HTTP/1.1 side of the port reads these from the server object.
    Object.assign(s, { keepAliveTimeout: options.keepAliveTimeout, headersTimeout: options.headersTimeout, requestTimeout: options.requestTimeout, maxHeaderSize: options.maxHeaderSize });
    return s as unknown as http.Server;
  });
  instrument(server as unknown as tls.Server, material, stats);
  // Runs before the handler createHttpServer installed: the forwarding code then sees HTTP/1.1-shaped requests.
  const identify = (req: http.IncomingMessage): ClientIdentity | undefined => (identity ? { subjectHeader: identity, subject: subjectOf(req) } : undefined);
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => adaptRequest(req, res, identify(req)));
  // A WebSocket handshake (HTTP/1.1 only) carries the client's subject too.
  server.prependListener('upgrade', (req: http.IncomingMessage) => adaptRequest(req, undefined, identify(req)));
  if (h2) {
    const hs = http2Stats(store, ctx.listener);
    h2stats = hs;
    server.on('session', (session: http2.ServerHttp2Session) => {
      hs.sessionsActive.inc();
      sessions.add(session);
      session.once('close', () => {
        hs.sessionsActive.dec();
        sessions.delete(session);
      });
      // A session error (a protocol violation by the client) ends that session only.
      session.on('error', () => {});
    });
    server.on('stream', (stream: http2.ServerHttp2Stream) => {
      hs.streamsActive.inc();
      hs.streamsTotal.inc();
      stream.once('close', () => hs.streamsActive.dec());
      stream.on('error', () => {});
    });
  }
  return {
    server,
    draining: () => {
      if (h2stats) h2stats.goawaySent.inc(sessions.size);
    },
  };
}

/** An HTTP/2 session's verified client subject ('' for none), read once from its socket. */
const sessionSubjects = new WeakMap<http2.Http2Session, string>();

/** The verified client subject of a request's connection (HTTP/1.1: its socket; HTTP/2: its session's). */
function subjectOf(req: http.IncomingMessage): string | undefined {
  const session = (req as unknown as http2.Http2ServerRequest).stream?.session;
  if (!session) return req.socket instanceof tls.TLSSocket ? subjects.get(req.socket) : undefined;
  let subject = sessionSubjects.get(session);
  if (subject === undefined) {
    // session.socket is a proxy of the TLS socket: the same methods, another identity.
    const socket = session.socket as tls.TLSSocket;
    const peer = socket.authorized ? socket.getPeerX509Certificate() : undefined;
    subject = peer ? oneLine(peer.subject) : '';
    sessionSubjects.set(session, subject);
  }
  return subject === '' ? undefined : subject;
}

/** The server of a `tcp` listener with `tls`: `onStream` gets each decrypted connection. */
export function createTlsTcpServer(listener: string, material: DownstreamTls, store: StatsStore, onStream: (socket: tls.TLSSocket) => void): tls.Server {
  const stats = tlsStats(store, listener, material.alpn);
  const server = tls.createServer({ ...material.serverOptions, SNICallback: sniCallback(material, stats) });
  instrument(server, material, stats);
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (!socket.destroyed) onStream(socket);
  });
  return server;
}
