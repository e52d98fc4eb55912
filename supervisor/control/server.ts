import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';
import { closeFd, peerCred, unixListen, type PeerCred } from '../../shared/native/native.ts';
import { admits } from './access.ts';
import { handleControl, type ControlReply, type ControlTarget } from './api.ts';
import { ensurePrivateDir } from '../os/paths.ts';

/** Largest request body the control socket reads. */
export const MAX_BODY = 64 * 1024;

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
  private fd: number | undefined;
  private ino = 0;

  constructor(socketPath: string, target: ControlTarget, log: Logger, group?: number) {
    this.socketPath = socketPath;
    this.target = target;
    this.log = log;
    this.group = group;
    this.http = http.createServer((req, res) => void this.answer(req, res));
    // The peer is checked before HTTP sees a byte: a refused peer's request is never parsed.
    this.server = net.createServer((socket) => {
      if (this.checkPeer(socket)) this.http.emit('connection', socket);
    });
  }

  /** Binds the socket; ERR_INSTANCE_RUNNING when another live instance already answers there. */
  async listen(): Promise<void> {
    ensurePrivateDir(path.dirname(this.socketPath), this.group);
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
    ensurePrivateDir(path.dirname(this.socketPath), this.group);
    await this.bindInPlace();
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
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const own = process.getuid?.() ?? 0;
    let peer: PeerCred = { pid: -1, uid: -1, gid: -1 };
    try {
      if (fd !== undefined) peer = peerCred(fd);
    } catch (err) {
      this.log.warn({ err }, 'could not read control peer credentials');
    }
    if (admits(peer, own, this.group)) return true;
    this.log.warn({ uid: peer.uid, gid: peer.gid, pid: peer.pid }, 'control socket refused a peer of another uid');
    const allowed = this.group === undefined ? `owner uid ${own}` : `owner uid ${own} or group ${this.group}`;
    const message = `uid ${peer.uid} may not control this instance (${allowed}; peer gid ${peer.gid}, pid ${peer.pid})`;
    const body = JSON.stringify({ ok: false, error: { code: 'ERR_PEER_REJECTED', message } });
    socket.on('error', () => {});
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    return false;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req, MAX_BODY);
    if (body === null) {
      const message = `request body over ${MAX_BODY} bytes (content-length ${req.headers['content-length'] ?? 'not given'})`;
      // The rest of the body stays unread: closing the connection is how it is refused.
      const headers = { connection: 'close' };
      return send(res, { status: 413, headers, body: { ok: false, error: { code: 'ERR_BAD_REQUEST', message } } });
    }
    send(res, await handleControl(this.target, req.method ?? 'GET', req.url ?? '/', body, req.headers['content-type']));
  }
}

/**
 * The request body, or null as soon as it is known to exceed `limit` bytes (from its content-length,
 * or once that many have arrived): an oversized body is never read in full nor buffered.
 */
export function readBody(req: Readable & Pick<http.IncomingMessage, 'headers'>, limit: number): Promise<string | null> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const take = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', take);
      req.pause();
      resolve(null);
    };
    req.on('data', take);
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

function send(res: http.ServerResponse, reply: ControlReply): void {
  const text = reply.contentType ? String(reply.body) : `${JSON.stringify(reply.body)}\n`;
  res.writeHead(reply.status, {
    ...reply.headers,
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
