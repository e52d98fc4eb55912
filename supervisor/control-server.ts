import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { BatonError } from '../shared/errors.ts';
import { peerCred } from '../shared/native/native.ts';
import { handleControl, type ControlTarget } from './control-api.ts';
import { ensurePrivateDir } from './paths.ts';

/** Largest request body the control socket reads. */
const MAX_BODY = 64 * 1024;

/**
 * The control socket: HTTP+JSON on a Unix socket (so `curl --unix-socket` works), 0600 in a 0700
 * directory, and every peer's uid checked with SO_PEERCRED as a second lock behind the file mode.
 */
export class ControlServer {
  private readonly socketPath: string;
  private readonly target: ControlTarget;
  private readonly log: Logger;
  private readonly server: net.Server;
  private readonly http: http.Server;

  constructor(socketPath: string, target: ControlTarget, log: Logger) {
    this.socketPath = socketPath;
    this.target = target;
    this.log = log;
    this.http = http.createServer((req, res) => void this.answer(req, res));
    // The peer is checked before HTTP sees a byte: a refused peer's request is never parsed.
    this.server = net.createServer((socket) => {
      if (this.checkPeer(socket)) this.http.emit('connection', socket);
    });
  }

  /** Binds the socket; ERR_INSTANCE_RUNNING when another live instance already answers there. */
  async listen(): Promise<void> {
    ensurePrivateDir(path.dirname(this.socketPath));
    if (await answers(this.socketPath)) {
      throw new BatonError('ERR_INSTANCE_RUNNING', `another Baton instance is already running with control socket ${this.socketPath}`);
    }
    fs.rmSync(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(this.socketPath, 0o600);
    this.log.info({ socket: this.socketPath }, 'control socket listening');
  }

  /** Stops answering and removes the socket file. */
  close(): void {
    this.server.close();
    this.http.closeAllConnections();
  }

  private checkPeer(socket: net.Socket): boolean {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const own = process.getuid?.() ?? 0;
    let uid = -1;
    try {
      if (fd !== undefined) uid = peerCred(fd).uid;
    } catch (err) {
      this.log.warn({ err }, 'could not read control peer credentials');
    }
    if (uid === own || uid === 0) return true;
    this.log.warn({ uid }, 'control socket refused a peer of another uid');
    const body = JSON.stringify({ ok: false, error: { code: 'ERR_PEER_REJECTED', message: `uid ${uid} may not control this instance (owner uid ${own})` } });
    socket.on('error', () => {});
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    return false;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) return send(res, 413, { ok: false, error: { code: 'ERR_CONTROL', message: `request body over ${MAX_BODY} bytes` } });
    }
    const reply = await handleControl(this.target, req.method ?? 'GET', req.url ?? '/');
    send(res, reply.status, reply.body, reply.contentType);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, contentType?: string): void {
  const text = contentType ? String(body) : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': contentType ?? 'application/json', 'content-length': Buffer.byteLength(text) });
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
