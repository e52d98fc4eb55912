import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DrainController } from '../../../child/drain/drain.ts';
import { LATENCY_STAT, REQUESTS_STAT, RequestStats } from '../../../child/stats/request-stats.ts';
import { privateStats } from '../../../child/runtime/standalone.ts';
import { TestPki } from '../../proxy/tls-pki.ts';

interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw HTTP/1.1 client on one TCP connection, so a test sees exactly which socket answers. */
class Client {
  readonly socket: net.Socket;
  /** Resolves when the connection has closed (either side). */
  readonly closed: Promise<void>;
  private buffer = '';
  private waiting: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.waiting?.();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('close', () => this.waiting?.());
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        clients.push(socket);
        resolve(new Client(socket));
      });
    });
  }

  /** Sends a keep-alive GET and reads one response (Content-Length framed). */
  async request(path = '/'): Promise<Response> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`);
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const [statusLine = '', ...lines] = this.buffer.slice(0, end).split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        const length = Number(headers['content-length'] ?? 0);
        if (this.buffer.length >= end + 4 + length) {
          const body = this.buffer.slice(end + 4, end + 4 + length);
          this.buffer = this.buffer.slice(end + 4 + length);
          return { status: Number(statusLine.split(' ')[1]), headers, body };
        }
      }
      if (this.socket.destroyed) throw new Error(`connection closed before a full response; got ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}

const clients: net.Socket[] = [];
const servers: (http.Server | https.Server)[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    if (s.listening) s.close();
  }
});

/** A tracked HTTP server on its own 127.0.0.1 port. */
async function serve(handler: http.RequestListener = (_req, res) => res.end('ok'), controller = new DrainController()) {
  const server = http.createServer(handler);
  servers.push(server);
  controller.track(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  /** Resolves once the controller counts exactly `n` open connections. */
  const openIs = (n: number) =>
    new Promise<void>((resolve) => {
      if (controller.open === n) return resolve();
      controller.onCount((open) => open === n && resolve());
    });
  return { controller, server, port, openIs };
}

/** A handler that answers `/slow` only once `release()` is called, and says when `/slow` has arrived. */
function gated() {
  let arrived!: () => void;
  const inHandler = new Promise<void>((resolve) => (arrived = resolve));
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const handler: http.RequestListener = (req, res) => {
    if (req.url !== '/slow') return res.end('ok');
    arrived();
    void gate.then(() => res.end('late'));
  };
  return { handler, inHandler, release };
}

/** Watches a promise so the test can ask whether it has settled. */
function observe(promise: Promise<void>): { settled: boolean } {
  const seen = { settled: false };
  void promise.then(() => (seen.settled = true));
  return seen;
}

describe('DrainController', () => {
  it('stops accepting new connections at drain, and resolves at once with none open', async () => {
    const { controller, server, port, openIs } = await serve();
    const client = await Client.connect(port);
    expect((await client.request()).body).toBe('ok');
    client.socket.destroy();
    await openIs(0);
    await controller.drain();
    expect(controller.draining).toBe(true);
    expect(server.listening).toBe(false);
    await expect(Client.connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('leaves an idle keep-alive connection open; its next answer says close, then it closes', async () => {
    const { controller, port, openIs } = await serve();
    const client = await Client.connect(port);
    const first = await client.request();
    expect(first.headers.connection).toBe('keep-alive');
    await openIs(1);
    const drained = observe(controller.drain());
    // The idle connection still works after drain began: it was not closed under the client.
    const second = await client.request('/after-drain');
    expect(second).toMatchObject({ status: 200, body: 'ok' });
    expect(second.headers.connection).toBe('close');
    await client.closed;
    await openIs(0);
    await controller.drain();
    expect(drained.settled).toBe(true);
  });

  it('makes a request in flight at drain, whose headers are not yet sent, answer with connection: close', async () => {
    let arrived!: () => void;
    const inHandler = new Promise<void>((resolve) => (arrived = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { controller, port } = await serve((_req, res) => {
      arrived();
      void gate.then(() => res.end('late'));
    });
    const client = await Client.connect(port);
    const answer = client.request('/slow');
    await inHandler;
    const drained = controller.drain();
    release();
    const response = await answer;
    expect(response).toMatchObject({ status: 200, body: 'late' });
    expect(response.headers.connection).toBe('close');
    await client.closed;
    await drained;
    expect(controller.open).toBe(0);
  });

  it('resolves drain() only when the last connection has closed', async () => {
    const { controller, port, openIs } = await serve();
    const a = await Client.connect(port);
    const b = await Client.connect(port);
    await a.request();
    await b.request();
    await openIs(2);
    const drained = observe(controller.drain());
    a.socket.destroy();
    await openIs(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained.settled).toBe(false);
    b.socket.destroy();
    await openIs(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained.settled).toBe(true);
  });

  it('cut() destroys every open connection and returns how many', async () => {
    const { controller, port, openIs } = await serve();
    const a = await Client.connect(port);
    const b = await Client.connect(port);
    await a.request();
    await openIs(2);
    const drained = controller.drain();
    expect(controller.cut()).toBe(2);
    await Promise.all([a.closed, b.closed, drained]);
    expect(controller.open).toBe(0);
    expect(controller.cut()).toBe(0);
  });

  it('onCount reports every change in open connections', async () => {
    const { controller, port, openIs } = await serve();
    const counts: number[] = [];
    controller.onCount((open) => counts.push(open));
    const a = await Client.connect(port);
    await openIs(1);
    const b = await Client.connect(port);
    await openIs(2);
    a.socket.destroy();
    await openIs(1);
    b.socket.destroy();
    await openIs(0);
    expect(counts).toEqual([1, 2, 1, 0]);
  });

  it('hurry() closes idle connections at once and a busy one once it has answered', async () => {
    const { handler, inHandler, release } = gated();
    const { controller, port, openIs } = await serve(handler);
    const idle = await Client.connect(port);
    await idle.request();
    const busy = await Client.connect(port);
    const answer = busy.request('/slow');
    await inHandler;
    await openIs(2);
    expect(controller.hurry()).toBe(2);
    await idle.closed;
    await new Promise((resolve) => setImmediate(resolve));
    expect(busy.socket.destroyed).toBe(false);
    release();
    expect(await answer).toMatchObject({ status: 200, body: 'late' });
    await busy.closed;
    await openIs(0);
  });

  it('counts an HTTPS request in flight on its TCP connection: hurry() lets it answer first, drain() makes it say close', async () => {
    const pki = new TestPki();
    afterAll(() => pki.cleanup());
    const leaf = pki.issue('server', ['localhost']);
    const { handler, inHandler, release } = gated();
    const controller = new DrainController();
    const server = https.createServer({ key: fs.readFileSync(leaf.key), cert: fs.readFileSync(leaf.cert) }, handler);
    servers.push(server);
    controller.track(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca() });
    clients.push(socket);
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write('GET /slow HTTP/1.1\r\nHost: test\r\n\r\n');
    await inHandler;
    const drained = controller.drain();
    expect(controller.hurry()).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.destroyed).toBe(false);
    release();
    await closed;
    await drained;
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(received.toLowerCase()).toContain('connection: close');
    expect(received.endsWith('late')).toBe(true);
  });

  it('records every response in its request stats, by status class, with its latency', async () => {
    const stats = privateStats();
    const controller = new DrainController(new RequestStats(() => stats, { generation: '7' }));
    const { port } = await serve((req, res) => {
      res.statusCode = req.url === '/missing' ? 404 : 200;
      res.end('x');
    }, controller);
    const client = await Client.connect(port);
    await client.request('/');
    await client.request('/');
    await client.request('/missing');
    // A response's 'close' comes a tick after its bytes went out, maybe after the client read them.
    const counted = () => (stats.sample(LATENCY_STAT, { generation: '7' }) as { count?: number } | undefined)?.count === 3;
    for (let i = 0; i < 100 && !counted(); i++) await new Promise((resolve) => setImmediate(resolve));
    const value = (codeClass: string) => {
      const sample = stats.sample(REQUESTS_STAT, { generation: '7', code_class: codeClass });
      return sample && sample.kind !== 'histogram' ? sample.value : undefined;
    };
    expect([value('2xx'), value('4xx')]).toEqual([2, 1]);
    const latency = stats.sample(LATENCY_STAT, { generation: '7' });
    expect(latency).toMatchObject({ kind: 'histogram', count: 3 });
  });

  it('records a request whose connection it never saw (an app handing requests over itself)', async () => {
    const stats = privateStats();
    const controller = new DrainController(new RequestStats(() => stats, { generation: '8' }));
    const { server } = await serve(undefined, controller);
    const front = http.createServer((req, res) => server.emit('request', req, res));
    servers.push(front);
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const client = await Client.connect((front.address() as net.AddressInfo).port);
    expect(await client.request('/')).toMatchObject({ status: 200, body: 'ok' });
    const counted = () => (stats.sample(LATENCY_STAT, { generation: '8' }) as { count?: number } | undefined)?.count === 1;
    for (let i = 0; i < 100 && !counted(); i++) await new Promise((resolve) => setImmediate(resolve));
    expect(counted()).toBe(true);
    expect(controller.open).toBe(0);
  });

  it('tracks a plain net.Server too, counting its connections', async () => {
    const controller = new DrainController();
    const server = net.createServer();
    controller.track(server);
    controller.track(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const counts: number[] = [];
    const opened = new Promise<void>((resolve) => controller.onCount((n) => (counts.push(n), n === 1 && resolve())));
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    clients.push(socket);
    await opened;
    const drained = controller.drain();
    expect(server.listening).toBe(false);
    socket.destroy();
    await drained;
    expect(counts).toEqual([1, 0]);
  });
});
