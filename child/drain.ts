import type http from 'node:http';
import type http2 from 'node:http2';
import net from 'node:net';
import type { RequestStats } from './request-stats.ts';

// Not `import http from 'node:http'`: an ES module import of node:http reads its lazy exports,
// which load undici, http2 and tls (~40 ms of CPU) — for an app that may serve only TCP.
const { ServerResponse } = process.getBuiltinModule('node:http');

/** Where a parked server listened, to be handed back its socket on unpark. */
export interface ParkedListener {
  server: net.Server;
  /** `host:port` or a Unix socket path, as the supervisor's store knows it. */
  address: string;
}
import { drainSession, isHttp2Server } from './http2-drain.ts';

/**
 * Tracks the connections of the servers a generation serves and drains them without racing
 * clients: listeners stop accepting (the supervisor's sockets stay open for the next generation),
 * every response from then on carries `Connection: close`, and an idle keep-alive connection is
 * left alone until it has answered one more request or the drain deadline cuts it. HTTPS
 * servers get the same; an HTTP/2 server's sessions get a graceful GOAWAY (their streams finish,
 * the client opens new ones on the next generation), and its HTTP/1.1 requests `Connection: close`.
 * A *parked* generation (a canary window after a reload) stops accepting the same way but keeps
 * running, so it can take its sockets back (`unpark`) if the new generation is rolled back.
 */
export class DrainController {
  private readonly servers = new Set<net.Server>();
  private readonly sockets = new Set<net.Socket>();
  private readonly pending = new Set<http.ServerResponse>();
  /** Sockets with a request in flight (an HTTP server's); the others are idle keep-alive connections. */
  private readonly busy = new Map<net.Socket, number>();
  private readonly sessions = new Set<http2.Http2Session>();
  private readonly countListeners = new Set<(open: number) => void>();
  private readonly idleListeners = new Set<() => void>();
  private readonly requests: RequestStats | undefined;
  private parkedListeners: ParkedListener[] = [];
  private keepAlive: NodeJS.Timeout | undefined;
  private hurried = false;
  draining = false;

  /** `requests`: where every HTTP response is counted. @default none */
  constructor(requests?: RequestStats) {
    this.requests = requests;
  }

  /** True while parked: not accepting, answering with `Connection: close`, ready to unpark. */
  get parked(): boolean {
    return this.keepAlive !== undefined;
  }

  /** Tracks `server`'s connections; for an HTTP server also applies the drain semantics above. */
  track(server: net.Server): void {
    if (this.servers.has(server)) return;
    this.servers.add(server);
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      this.changed();
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.busy.delete(socket);
        this.changed();
      });
    });
    const h2 = isHttp2Server(server);
    // Any server that emits 'request' (node:http, node:https, node:http2's compatibility API, and
    // what builds on them); a plain TCP server never does. Not a class test: that would load
    // node:https (and tls) into every generation that has no HTTPS server.
    server.prependListener('request', (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
      // An HTTP/2 response has no Connection header: its session's GOAWAY does that job.
      if (!(res instanceof ServerResponse)) return;
      this.pending.add(res);
      const socket = (req as http.IncomingMessage).socket;
      this.busy.set(socket, (this.busy.get(socket) ?? 0) + 1);
      if (this.draining || this.parked) res.setHeader('Connection', 'close');
      this.requests?.track(res);
      res.once('close', () => {
        this.pending.delete(res);
        const left = (this.busy.get(socket) ?? 1) - 1;
        if (left > 0) this.busy.set(socket, left);
        else this.busy.delete(socket);
        // Hurried: the connection goes once it has answered what it was serving.
        if (this.hurried && left <= 0) socket.destroy();
      });
    });
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
      this.stopKeepAlive();
      this.parkedListeners = [];
      for (const res of this.pending) if (!res.headersSent) res.setHeader('Connection', 'close');
      for (const session of this.sessions) drainSession(session);
      this.stopAccepting();
    }
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleListeners.add(resolve));
  }

  /**
   * Stops accepting but keeps the process, its connections and its state: the listening handles
   * close (libuv closes their descriptors, so unpark needs fresh ones), and every response from
   * now on asks its client to reconnect — to the new generation. Returns where each server listened.
   */
  park(): ParkedListener[] {
    if (this.draining || this.parked) return this.parkedListeners;
    for (const res of this.pending) if (!res.headersSent) res.setHeader('Connection', 'close');
    this.parkedListeners = this.stopAccepting();
    // With no listening handle and no connection left, nothing would keep the event loop alive.
    this.keepAlive = setInterval(() => {}, 60_000);
    return this.parkedListeners;
  }

  /** Listens again on a descriptor for each parked server (`acquire` gets one for its address); resolves once all listen. */
  async unpark(acquire: (address: string) => Promise<number>): Promise<number> {
    if (!this.parked) return 0;
    const parked = this.parkedListeners;
    for (const { server, address } of parked) {
      const fd = await acquire(address);
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once('error', onError);
        server.listen({ fd }, () => {
          server.off('error', onError);
          resolve();
        });
      });
    }
    this.parkedListeners = [];
    this.stopKeepAlive();
    return parked.length;
  }

  /**
   * Too many generations drain: idle connections close now, busy ones once they have answered
   * the request they serve. Returns how many connections that cuts.
   */
  hurry(): number {
    this.hurried = true;
    const n = this.sockets.size;
    for (const socket of this.sockets) if (!this.busy.has(socket)) socket.destroy();
    return n;
  }

  /** Destroys every open connection (the drain deadline has passed); returns how many. */
  cut(): number {
    const n = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    return n;
  }

  private stopAccepting(): ParkedListener[] {
    const stopped: ParkedListener[] = [];
    for (const server of this.servers) {
      if (!server.listening) continue;
      const address = describeAddress(server.address());
      // net.Server's close, not http.Server's: the latter also closes idle keep-alive
      // connections at once, which races a client sending its next request on them.
      net.Server.prototype.close.call(server);
      if (address !== undefined) stopped.push({ server, address });
    }
    return stopped;
  }

  private stopKeepAlive(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  private changed(): void {
    for (const l of this.countListeners) l(this.sockets.size);
    if (this.sockets.size === 0 && this.draining) {
      for (const l of this.idleListeners) l();
      this.idleListeners.clear();
    }
  }
}

function describeAddress(a: string | net.AddressInfo | null): string | undefined {
  if (a === null) return undefined;
  if (typeof a === 'string') return a;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
