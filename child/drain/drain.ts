import type http from 'node:http';
import type http2 from 'node:http2';
import net from 'node:net';
// Not the global: that is a lazy getter of Node's, looked up again at every request.
import { performance } from 'node:perf_hooks';
import type { RequestStats } from '../stats/request-stats.ts';

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
  private readonly sessions = new Set<http2.Http2Session>();
  private readonly countListeners = new Set<(open: number) => void>();
  private readonly idleListeners = new Set<() => void>();
  private readonly requests: RequestStats | undefined;
  private parkedListeners: ParkedListener[] = [];
  private keepAlive: NodeJS.Timeout | undefined;
  private hurried = false;
  private readonly onResponseClose: (this: http.ServerResponse) => void;
  draining = false;

  /** `requests`: where every HTTP response is counted. @default none */
  constructor(requests?: RequestStats) {
    this.requests = requests;
    const controller = this;
    // One listener for every response (EventEmitter calls it with the response as `this`), not a
    // closure per request.
    this.onResponseClose = function (this: http.ServerResponse) {
      controller.responseClosed(this);
    };
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
      // On every tracked socket, so that they all have one shape.
      (socket as Tracked)[kInFlight] = { responses: [], started: [] };
      this.sockets.add(socket);
      this.changed();
      socket.once('close', () => {
        this.sockets.delete(socket);
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
      const flight = inFlightOf((req as http.IncomingMessage).socket);
      if (this.draining || this.parked) res.setHeader('Connection', 'close');
      if (flight === undefined) {
        // A socket this server's 'connection' never carried (an app's own hand-off): counted all the same.
        const start = performance.now();
        res.once('close', () => this.requests?.record(res.statusCode, performance.now() - start));
        return;
      }
      flight.responses.push(res);
      flight.started.push(performance.now());
      res.once('close', this.onResponseClose);
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
      this.closeInFlight();
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
    this.closeInFlight();
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
    for (const socket of this.sockets) if (((socket as Tracked)[kInFlight]?.responses.length ?? 0) === 0) socket.destroy();
    return n;
  }

  /** Destroys every open connection (the drain deadline has passed); returns how many. */
  cut(): number {
    const n = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    return n;
  }

  /** Every response in flight whose head is not yet written asks its client to reconnect. */
  private closeInFlight(): void {
    for (const socket of this.sockets) {
      for (const res of (socket as Tracked)[kInFlight]?.responses ?? []) if (!res.headersSent) res.setHeader('Connection', 'close');
    }
  }

  /** A response is over (sent, or its connection gone): counted, and out of its connection's list. */
  private responseClosed(res: http.ServerResponse): void {
    const socket = res.req.socket;
    const flight = inFlightOf(socket);
    const i = flight === undefined ? -1 : flight.responses.indexOf(res);
    if (i === -1) return;
    const { responses, started } = flight!;
    const start = started[i]!;
    // Nearly always the only one (no pipelining): pop, which keeps the arrays' room for the next
    // request, where shift gives it up and splice returns an array.
    if (i === responses.length - 1) {
      responses.pop();
      started.pop();
    } else {
      responses.splice(i, 1);
      started.splice(i, 1);
    }
    this.requests?.record(res.statusCode, performance.now() - start);
    // Hurried: the connection goes once it has answered what it was serving.
    if (this.hurried && responses.length === 0) socket.destroy();
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

/**
 * A tracked connection's responses in flight, oldest first (a client may pipeline), and when each
 * began: kept on the socket, so that a request adds to two arrays instead of a Set and a Map entry
 * that are made and dropped again for every request.
 */
interface InFlight {
  responses: http.ServerResponse[];
  started: number[];
}
const kInFlight = Symbol('baton.in-flight');
type Tracked = net.Socket & { [kInFlight]?: InFlight; _parent?: net.Socket | null };

/** The list of the connection a request came on: its own, or (HTTPS) the TCP socket's under it, which 'connection' saw. */
function inFlightOf(socket: net.Socket | null | undefined): InFlight | undefined {
  const s = socket as Tracked | null | undefined;
  return s?.[kInFlight] ?? (s?._parent as Tracked | null | undefined)?.[kInFlight];
}

function describeAddress(a: string | net.AddressInfo | null): string | undefined {
  if (a === null) return undefined;
  if (typeof a === 'string') return a;
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
