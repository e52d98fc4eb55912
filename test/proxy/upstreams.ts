// Real upstream servers for the proxy tests, started in the test process on loopback.
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { NODE_FLAGS, ROOT } from '../helpers/baton.ts';

export interface Upstream {
  name: string;
  port: number;
  address: string;
  server: http.Server;
  /** /healthz answers 503 while false. */
  healthy: boolean;
  requests: number;
  /** Requests for /healthz so far. */
  healthProbes: number;
  /** Headers of the last request. */
  last?: http.IncomingHttpHeaders;
  close(): Promise<void>;
}

/**
 * `/` → `upstream NAME`; `/echo` streams the request body back; `/bytes?n=N` streams N bytes
 * (chunked); `/slow?ms=N` answers after N ms; `/headers` → the request headers as JSON;
 * `/healthz` → 200 or 503; `/reset` drops the connection before answering,
 * `/reset-after-headers` after part of the body; any Upgrade: a WebSocket echo.
 */
export async function startUpstream(name: string, options: { socketPath?: string } = {}): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const up: Upstream = {
    name,
    port: 0,
    address: '',
    healthy: true,
    requests: 0,
    healthProbes: 0,
    server: http.createServer((req, res) => {
      up.requests += 1;
      up.last = req.headers;
      const url = new URL(req.url ?? '/', 'http://x');
      switch (url.pathname) {
        case '/echo':
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          req.pipe(res);
          return;
        case '/bytes': {
          let left = Number(url.searchParams.get('n') ?? 0);
          const chunk = Buffer.alloc(64 * 1024, 'x');
          res.writeHead(200, { 'content-type': 'application/octet-stream', trailer: 'x-done' });
          const pump = (): void => {
            while (left > 0) {
              const n = Math.min(left, chunk.length);
              left -= n;
              if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
            }
            res.addTrailers({ 'x-done': 'yes' });
            res.end();
          };
          pump();
          return;
        }
        case '/slow':
          setTimeout(() => res.end(`upstream ${name} slow\n`), Number(url.searchParams.get('ms') ?? 1000));
          return;
        case '/headers':
          res.setHeader('content-type', 'application/json');
          res.setHeader('connection', 'keep-alive, x-hop');
          res.setHeader('x-hop', 'must not pass');
          res.setHeader('keep-alive', 'timeout=5');
          res.end(JSON.stringify(req.headers));
          return;
        case '/reset':
          req.socket.destroy();
          return;
        case '/reset-after-headers':
          res.writeHead(200, { 'content-length': 1000 });
          res.write('partial');
          setTimeout(() => req.socket.destroy(), 20);
          return;
        case '/healthz':
          up.healthProbes += 1;
          res.statusCode = up.healthy ? 200 : 503;
          res.end(up.healthy ? 'ok\n' : 'down\n');
          return;
        default:
          req.resume();
          res.end(`upstream ${name}\n`);
      }
    }),
    async close() {
      wss.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => up.server.close(() => r()));
    },
  };
  const wss = new WebSocketServer({ server: up.server });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(binary ? data : `${name}: ${String(data)}`, { binary })));
  up.server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => {
    if (options.socketPath) up.server.listen(options.socketPath, resolve);
    else up.server.listen(0, '127.0.0.1', resolve);
  });
  if (options.socketPath) up.address = `unix:${options.socketPath}`;
  else {
    up.port = (up.server.address() as net.AddressInfo).port;
    up.address = `127.0.0.1:${up.port}`;
  }
  return up;
}

/** `[node, flags…, proxy/main.ts, --config, FILE]`. */
export function proxyCommand(configPath: string): string[] {
  return [process.execPath, ...NODE_FLAGS, path.join(ROOT, 'proxy/main.ts'), '--config', configPath];
}
