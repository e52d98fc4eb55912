import http from 'node:http';
import type http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { drainSession, isHttp2Server } from './http2-drain.ts';

/**
 * Tracks the connections of the servers a generation serves and drains them without racing
 * clients: listeners stop accepting (the supervisor's sockets stay open for the next generation),
 * every response from then on carries `Connection: close`, and an idle keep-alive connection is
 * left alone until it has answered one more request or the drain deadline cuts it. HTTPS
 * servers get the same; an HTTP/2 server's sessions get a graceful GOAWAY (their streams finish,
 * the client opens new ones on the next generation), and its HTTP/1.1 requests `Connection: close`.
 */
export class DrainController {
  private readonly servers = new Set<net.Server>();
  private readonly sockets = new Set<net.Socket>();
  private readonly pending = new Set<http.ServerResponse>();
  private readonly sessions = new Set<http2.Http2Session>();
  private readonly countListeners = new Set<(open: number) => void>();
  private readonly idleListeners = new Set<() => void>();
  draining = false;

  /** Tracks `server`'s connections; for an HTTP server also applies the drain semantics above. */
  track(server: net.Server): void {
    if (this.servers.has(server)) return;
    this.servers.add(server);
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      this.changed();
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.changed();
      });
    });
    const h2 = isHttp2Server(server);
    if (server instanceof http.Server || server instanceof https.Server || h2) {
      server.prependListener('request', (_req: unknown, res: http.ServerResponse | http2.Http2ServerResponse) => {
        // An HTTP/2 response has no Connection header: its session's GOAWAY does that job.
        if (!(res instanceof http.ServerResponse)) return;
        this.pending.add(res);
        if (this.draining) res.setHeader('Connection', 'close');
        res.once('close', () => this.pending.delete(res));
      });
    }
    if (h2) {
      server.on('session', (session: http2.Http2Session) => {
        this.sessions.add(session);
        session.once('close', () => this.sessions.delete(session));
        if (this.draining) drainSession(session);
      });
    }
  }

  /** Open connections across every tracked server. */
  get open(): number {
    return this.sockets.size;
  }

  /** Calls `listener` whenever the number of open connections changes. */
  onCount(listener: (open: number) => void): void {
    this.countListeners.add(listener);
  }

  /** Stops accepting on every tracked server; resolves when their last connection has closed. */
  drain(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      for (const res of this.pending) if (!res.headersSent) res.setHeader('Connection', 'close');
      for (const session of this.sessions) drainSession(session);
      for (const server of this.servers) {
        // net.Server's close, not http.Server's: the latter also closes idle keep-alive
        // connections at once, which races a client sending its next request on them.
        if (server.listening) net.Server.prototype.close.call(server);
      }
    }
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleListeners.add(resolve));
  }

  /** Destroys every open connection (the drain deadline has passed); returns how many. */
  cut(): number {
    const n = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    return n;
  }

  private changed(): void {
    for (const l of this.countListeners) l(this.sockets.size);
    if (this.sockets.size === 0 && this.draining) {
      for (const l of this.idleListeners) l();
      this.idleListeners.clear();
    }
  }
}
