import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';
import { closeFd, socketPeerCred, unixListen, type PeerCred } from '../../shared/native/native.ts';
import { admits } from './access.ts';
import { handleControl, type ControlReply, type ControlTarget } from './api.ts';
import { ensurePrivateDir, ensurePrivateSubdir } from '../os/paths.ts';
import { readBody } from './request-body.ts';
import { pipeEvents } from './event-stream.ts';
import { announce, NoEvents } from '../core/events.ts';

/** Largest request body the control socket reads. */
export const MAX_BODY = 64 * 1024;

/**
 * Bounds on one control connection. A control client is a CLI or curl that sends one small request
 * at once: whatever takes longer is broken or hostile, and must not hold the supervisor's resources.
 */
export interface ControlLimits {
  /** From connect to the end of the request headers. @default 5000 */
  headersMs: number;
  /** From the end of the headers to the end of the body. @default 10000 */
  bodyMs: number;
  /** For the client to take the answer once it is written. @default 5000 */
  answerMs: number;
  /** Connections open at once; more are closed on accept. @default 64 */
  maxConnections: number;
}

export const CONTROL_LIMITS: ControlLimits = { headersMs: 5_000, bodyMs: 10_000, answerMs: 5_000, maxConnections: 64 };

/**
 * The control socket: HTTP+JSON on a Unix socket (so `curl --unix-socket` works), 0600 in a 0700
 * directory (0660 in a 0750 one owned by the control group, when there is one), and every peer
 * checked with SO_PEERCRED as a second lock behind the file modes.
 */
export class ControlServer {
  private readonly socketPath: string;
  private readonly target: ControlTarget;
  private readonly log: Logger;
  private readonly group: number | undefined;
  private readonly server: net.Server;
  private readonly http: http.Server;
  private readonly limits: ControlLimits;
  /** Each connection's one deadline: headers, then body, then the answer taken; none while a handler runs. */
  private readonly deadlines = new WeakMap<net.Socket, NodeJS.Timeout>();
  /** Connections that have had their one request. */
  private readonly served = new WeakSet<net.Socket>();
  private fd: number | undefined;
  private ino = 0;

  constructor(socketPath: string, target: ControlTarget, log: Logger, group?: number, limits: Partial<ControlLimits> = {}) {
    this.socketPath = socketPath;
    this.target = target;
    this.log = log;
    this.group = group;
    this.limits = { ...CONTROL_LIMITS, ...limits };
    this.http = http.createServer((req, res) => {
      this.answer(req, res).catch((err: unknown) => this.failed(req, res, err));
    });
    // The server is never listened on, so Node's own headers/request timeouts never run: ours do.
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => this.clientError(err, socket));
    // The peer is checked before HTTP sees a byte: a refused peer's request is never parsed.
    this.server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('close', () => clearTimeout(this.deadlines.get(socket)));
      if (!this.checkPeer(socket)) return this.arm(socket, this.limits.answerMs);
      this.arm(socket, this.limits.headersMs);
      this.http.emit('connection', socket);
    });
    this.server.maxConnections = this.limits.maxConnections;
  }

  /** Binds the socket; ERR_INSTANCE_RUNNING when another live instance already answers there. */
  async listen(): Promise<void> {
    this.ensureRuntimeDir();
    if (await answers(this.socketPath)) {
      throw new BatonError('ERR_INSTANCE_RUNNING', `another Baton instance is already running with control socket ${this.socketPath}`);
    }
    await this.bindInPlace();
  }

  /**
   * Replaces the socket of the supervisor upgrading to this one: a client connects to the old
   * one or to this one, never to nothing, because the new socket is renamed over the old path.
   */
  async takeOver(): Promise<void> {
    this.ensureRuntimeDir();
    await this.bindInPlace();
  }

  /**
   * The control socket's directory, and beside it the generations' compile cache and NOTIFY_SOCKET
   * directory, all private: checked here, at start, so a bad one stops Baton with its reason
   * instead of failing each generation's launch.
   */
  private ensureRuntimeDir(): void {
    const dir = path.dirname(this.socketPath);
    ensurePrivateDir(dir, this.group);
    ensurePrivateSubdir(dir, 'compile-cache', true);
    ensurePrivateSubdir(dir, 'notify');
  }

  /**
   * Stops answering; removes the socket file when it is still this server's (after an upgrade
   * the path names the successor's socket, which must stay).
   */
  close(): void {
    this.server.close();
    this.http.closeAllConnections();
    if (this.fd === undefined) return;
    try {
      if (fs.statSync(this.socketPath).ino === this.ino) fs.rmSync(this.socketPath, { force: true });
    } catch {
      // already gone
    }
    this.fd = undefined;
  }

  /**
   * Binds under a temporary name, sets owner and mode, then renames over the path: the socket is
   * never reachable with looser modes, and a predecessor's is replaced atomically. Node is given
   * the descriptor, not the path, so closing never unlinks a path another process now owns.
   */
  private async bindInPlace(): Promise<void> {
    const temporary = `${this.socketPath}.${process.pid}.new`;
    fs.rmSync(temporary, { force: true });
    const fd = unixListen(temporary, 64);
    try {
      if (this.group !== undefined) fs.chownSync(temporary, -1, this.group);
      fs.chmodSync(temporary, this.group === undefined ? 0o600 : 0o660);
      fs.renameSync(temporary, this.socketPath);
    } catch (err) {
      fs.rmSync(temporary, { force: true });
      closeFd(fd);
      throw err;
    }
    this.fd = fd;
    this.ino = fs.statSync(this.socketPath).ino;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ fd }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.log.info({ socket: this.socketPath, ...(this.group !== undefined ? { group: this.group } : {}) }, 'control socket listening');
  }

  private checkPeer(socket: net.Socket): boolean {
    const own = process.getuid?.() ?? 0;
    const peer: PeerCred = socketPeerCred(socket as unknown as { _handle?: unknown });
    if (peer.uid === -1) this.log.warn('could not read control peer credentials');
    if (admits(peer, own, this.group)) return true;
    announce(this.target.events ?? NoEvents, this.log, 'warn', { type: 'control-refused', uid: peer.uid, gid: peer.gid, peerPid: peer.pid }, 'control socket refused a peer of another uid');
    const allowed = this.group === undefined ? `owner uid ${own}` : `owner uid ${own} or group ${this.group}`;
    const message = `uid ${peer.uid} may not control this instance (${allowed}; peer gid ${peer.gid}, pid ${peer.pid})`;
    const body = JSON.stringify({ ok: false, error: { code: 'ERR_PEER_REJECTED', message } });
    socket.on('error', () => {});
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    return false;
  }

  /** (Re)sets the one deadline of `socket`: past it the connection is cut, whatever it was doing. */
  private arm(socket: net.Socket, ms: number): void {
    clearTimeout(this.deadlines.get(socket));
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    this.deadlines.set(socket, timer);
  }

  private disarm(socket: net.Socket): void {
    clearTimeout(this.deadlines.get(socket));
  }

  /** One request per connection (every answer says `connection: close`): a pipelined second one is never run. */
  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const socket = req.socket;
    if (this.served.has(socket)) return void req.resume();
    this.served.add(socket);
    this.arm(socket, this.limits.bodyMs);
    const body = await readBody(req, MAX_BODY, this.limits.bodyMs);
    if (body.kind === 'gone') {
      // A parse error mid-body was already answered (clientError): let that answer go out.
      if (!socket.writableEnded) socket.destroy();
      return;
    }
    if (body.kind === 'too-large') {
      const message = `request body over ${MAX_BODY} bytes (content-length ${req.headers['content-length'] ?? 'not given'})`;
      // The rest of the body stays unread: closing the connection is how it is refused.
      return this.send(res, { status: 413, body: { ok: false, error: { code: 'ERR_BAD_REQUEST', message } } });
    }
    this.disarm(socket);
    this.send(res, await handleControl(this.target, req.method ?? 'GET', req.url ?? '/', body.text, req.headers['content-type']));
  }

  /** A bug of ours, not the client's: logged, answered 500 if still possible, and never thrown further. */
  private failed(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    this.log.error({ err, method: req.method, url: req.url }, 'control request failed');
    if (res.headersSent || res.destroyed) return void req.socket.destroy();
    this.send(res, { status: 500, body: { ok: false, error: { code: 'ERR_CONTROL', message: (err as Error).message } } });
  }

  /** A request HTTP cannot parse: 400 (431 for oversized headers) if nothing was answered yet, then closed. */
  private clientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    // Past the headers a response exists; unless it has started, the client still hears why.
    const current = (socket as net.Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
    if (!socket.writable || current?.headersSent) return void socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = `${JSON.stringify({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: `malformed HTTP request: ${err.message}` } })}\n`;
    const reason = status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
    this.arm(socket, this.limits.answerMs);
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }

  private send(res: http.ServerResponse, reply: ControlReply): void {
    // A stream of events has no end to wait for: a reader that stops reading is cut by its backlog instead.
    if (reply.events) return pipeEvents(res, reply.events);
    if (res.socket) this.arm(res.socket, this.limits.answerMs);
    send(res, reply);
  }
}

function send(res: http.ServerResponse, reply: ControlReply): void {
  const text = reply.contentType ? String(reply.body) : `${JSON.stringify(reply.body)}\n`;
  res.writeHead(reply.status, {
    ...reply.headers,
    connection: 'close',
    'content-type': reply.contentType ?? 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** True when something accepts connections on the Unix socket at `p`. */
function answers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(p);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
