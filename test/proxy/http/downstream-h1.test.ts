// The lean downstream HTTP/1.1 path (proxy/http/downstream-h1.ts) against node:http's: the same proxy
// twice, one as shipped and one with BATON_PROXY_DOWNSTREAM=node, sent the same bytes; what comes
// back must be the same bytes (but for the Date value), and what falls back must be answered whole.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { BatonProcess } from '../../helpers/baton.ts';
import { freePort } from '../../helpers/ports.ts';
import { addresses, rawExchange, startProxyBaton, statValue, type ProxyFile } from '../harness.ts';
import { startUpstream, type Upstream } from '../upstreams.ts';

let up: Upstream;
let lean: BatonProcess;
let node: BatonProcess;
let leanPort: number;
let nodePort: number;
let leanAdmin: number;

function file(web: string, admin: string, dead: number): ProxyFile {
  return {
    listeners: [
      { name: 'web', address: web },
      { name: 'admin', address: admin },
    ],
    app: {
      listeners: {
        web: {
          protocol: 'http',
          headers_timeout: '600ms',
          idle_timeout: '5s',
          routes: [
            { match: { prefix: '/direct' }, direct_response: { status: 200, body: 'direct\n', headers: { 'x-direct': '1' } } },
            { match: { prefix: '/down/' }, cluster: 'dead' },
            { match: { prefix: '/' }, cluster: 'main' },
          ],
        },
      },
      clusters: { main: { endpoints: [up.address] }, dead: { endpoints: [`127.0.0.1:${dead}`] } },
      admin: { listener: 'admin' },
    },
  };
}

beforeAll(async () => {
  up = await startUpstream('a');
  const dead = await freePort();
  const l = await addresses('lean', 'leanAdmin', 'node', 'nodeAdmin');
  leanPort = l.lean!.port;
  nodePort = l.node!.port;
  leanAdmin = l.leanAdmin!.port;
  lean = startProxyBaton(file(l.lean!.address, l.leanAdmin!.address, dead));
  node = startProxyBaton(file(l.node!.address, l.nodeAdmin!.address, dead), { BATON_PROXY_DOWNSTREAM: 'node' });
  await Promise.all([lean.active(1), node.active(1)]).catch((err: unknown) => {
    throw new Error(`${String(err)}\nstderr: ${lean.stderr.join('')}${node.stderr.join('')}`);
  });
}, 40_000);

afterAll(async () => {
  await Promise.all([lean?.cleanup(), node?.cleanup()]);
  await up?.close();
});

/** The response bytes with each Date value blanked (the one field that may differ between two runs). */
function normal(raw: string): string {
  return raw.replace(/\r\ndate: [^\r]*/gi, '\r\nDate: -');
}

/** One chunked response: its head, and its body and trailer section decoded (chunk sizes follow the upstream's reads). */
function dechunk(raw: string): { head: string; body: string; trailers: string } {
  const end = raw.indexOf('\r\n\r\n');
  let at = end + 4;
  let body = '';
  for (;;) {
    const line = raw.indexOf('\r\n', at);
    const size = parseInt(raw.slice(at, line), 16);
    at = line + 2;
    if (size === 0) break;
    body += raw.slice(at, at + size);
    at += size + 2;
  }
  return { head: raw.slice(0, end), body, trailers: raw.slice(at) };
}

/** `raw` sent on a new connection to each proxy; both answers, normalised, once each has closed. */
async function both(raw: string | Buffer, timeoutMs?: number): Promise<[string, string]> {
  const [a, b] = await Promise.all([rawExchange(leanPort, raw, timeoutMs), rawExchange(nodePort, raw, timeoutMs)]);
  return [normal(a), normal(b)];
}

function get(path: string, extra = '', method = 'GET'): string {
  return `${method} ${path} HTTP/1.1\r\nHost: proxy.test\r\nX-Request-Id: rq-${path.length}-${method}\r\n${extra}\r\n`;
}

const fallbacks = (): Promise<number> => statValue(leanAdmin, 'listener.web.downstream_cx_fallback');

/** Writes `parts` one after another on one connection, each once the answers before it are in (`answers` status lines). */
function sequence(port: number, parts: { send: string; answers: number }[]): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    let step = 0;
    let expected = 0;
    const s = net.connect(port, '127.0.0.1');
    const next = (): void => {
      const part = parts[step++];
      if (!part) return;
      expected += part.answers;
      s.write(part.send);
    };
    s.on('connect', next);
    s.setTimeout(10_000, () => s.destroy(new Error(`no answer in time; got ${got}`)));
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if ((got.match(/HTTP\/1\.1 \d{3} /g) ?? []).length >= expected) next();
    });
    s.on('close', () => resolve(normal(got)));
    s.on('error', reject);
  });
}

describe('proxy: the lean HTTP/1.1 path', () => {
  it('keep-alive and pipelined GETs, HEAD, a chunked answer with a trailer, a direct answer: the same bytes as node:http', async () => {
    const before = await fallbacks();
    const pipelined = [get('/'), get('/', '', 'HEAD'), get('/direct'), get('/headers'), get('/', 'Connection: close\r\n')].join('');
    const [a, b] = await both(pipelined);
    expect(a).toBe(b);
    expect(a.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(5);
    expect(a).toContain('Keep-Alive: timeout=5');
    const [chunked, nodeChunked] = (await both(`${get('/', '', 'HEAD')}${get('/bytes?n=70000', 'Connection: close\r\n')}`)).map((r) => r.slice(r.indexOf('HTTP/1.1', 1)));
    expect(dechunk(chunked!)).toEqual(dechunk(nodeChunked!));
    expect(dechunk(chunked!)).toMatchObject({ body: 'x'.repeat(70000), trailers: 'x-done: yes\r\n\r\n' });
    expect(chunked).toContain('Transfer-Encoding: chunked');
    // One request at a time, each once the one before has been answered.
    const steps = [get('/'), get('/', '', 'DELETE'), get('/', '', 'OPTIONS'), get('/headers', 'Connection: close\r\n')].map((send) => ({ send, answers: 1 }));
    const [c, d] = await Promise.all([sequence(leanPort, steps), sequence(nodePort, steps)]);
    expect(c).toBe(d);
    expect(c.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(4);
    expect(await fallbacks()).toBe(before);
  });

  it('a POST with a body after a GET on the same connection goes to node:http, and both are answered in order', async () => {
    const before = await fallbacks();
    const post = 'POST /echo HTTP/1.1\r\nHost: proxy.test\r\nX-Request-Id: rq-post\r\nContent-Length: 11\r\n\r\nhello world';
    const [a, b] = await both(get('/') + post + get('/', 'Connection: close\r\n'));
    expect(a).toBe(b);
    expect(a.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(3);
    expect(a).toContain('\r\nb\r\nhello world\r\n0\r\n');
    // The same, each request written once the one before has been answered.
    const steps = [get('/'), post, get('/', 'Connection: close\r\n')].map((send) => ({ send, answers: 1 }));
    const [c, d] = await Promise.all([sequence(leanPort, steps), sequence(nodePort, steps)]);
    expect(c).toBe(d);
    expect(await fallbacks()).toBe(before + 2);
  });

  it('the upstream sees the same request headers from a lean-path GET and a node:http one', async () => {
    const headers = 'X-Forwarded-For: 203.0.113.7\r\nConnection: x-hop, keep-alive\r\nX-Hop: drop me\r\nTE: trailers\r\nAccept: */*\r\n';
    const leanAnswer = await rawExchange(leanPort, get('/headers', `${headers}Connection: close\r\n`));
    // An Expect field sends the connection to node:http before this request.
    const viaNode = await rawExchange(leanPort, `${get('/', 'Expect: 100-continue\r\n')}${get('/headers', `${headers}Connection: close\r\n`)}`);
    const seen = (raw: string): Record<string, string> => JSON.parse(raw.slice(raw.lastIndexOf('\r\n\r\n') + 4)) as Record<string, string>;
    const fromLean = seen(leanAnswer);
    expect(fromLean).toEqual(seen(viaNode));
    expect(fromLean).toMatchObject({ host: 'proxy.test', 'x-forwarded-for': '203.0.113.7, 127.0.0.1', 'x-forwarded-proto': 'http', 'x-request-id': 'rq-8-GET', accept: '*/*' });
    expect(fromLean['x-hop']).toBeUndefined();
    expect(fromLean.te).toBeUndefined();
  });

  it('a WebSocket upgrade still goes through (node:http takes the connection)', async () => {
    const before = await fallbacks();
    const ws = new WebSocket(`ws://127.0.0.1:${leanPort}/ws`);
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('ping'));
      ws.once('message', (data) => resolve(String(data)));
      ws.once('error', reject);
    });
    ws.close();
    expect(echoed).toBe('a: ping');
    expect(await fallbacks()).toBe(before + 1);
  });

  it('malformed requests get the 400 node:http gives: first on a connection, after a good GET, a bad Host, HTTP/1.0 without Host, HTTP/2.0', async () => {
    for (const raw of [
      'GET / HTTP/1.1\r\nHost proxy.test\r\n\r\n',
      `${get('/')}GET /\x01 HTTP/1.1\r\nHost: proxy.test\r\n\r\n`,
      'GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nX-Request-Id: dup\r\n\r\n',
      'GET / HTTP/1.1\r\nX-Request-Id: nohost\r\n\r\n',
      'GET / HTTP/1.0\r\nX-Request-Id: ten\r\n\r\n',
      'GET / HTTP/2.0\r\nHost: proxy.test\r\nX-Request-Id: two\r\n\r\n',
    ]) {
      const [a, b] = await both(raw);
      expect(a, JSON.stringify(raw)).toBe(b);
      expect(a).toMatch(/HTTP\/1\.1 (400|200) /);
    }
  });

  it('an upstream that refuses: the same 503 as node:http; a connection that sends nothing: the same 408', async () => {
    const [a, b] = await both(get('/down/x', 'Connection: close\r\n'));
    expect(a).toBe(b);
    expect(a).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(a).toContain('upstream connect error: ECONNREFUSED');
    const [c, d] = await both('');
    expect(c).toBe(d);
    expect(c).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('a client that goes away while its request is upstream: the upstream exchange is cut, as on node:http', async () => {
    const upstreamConnections = (): Promise<number> => new Promise((resolve) => up.server.getConnections((_e, n) => resolve(n)));
    for (const port of [leanPort, nodePort]) {
      const before = up.requests;
      const s = net.connect(port, '127.0.0.1', () => s.write(get('/slow?ms=20000')));
      s.on('error', () => {});
      await expect.poll(() => up.requests).toBe(before + 1);
      const open = await upstreamConnections();
      s.destroy();
      await expect.poll(upstreamConnections, { timeout: 5000 }).toBe(open - 1);
    }
  });

  it('a drain answers an idle lean connection once more with Connection: close, closes the other idle one, and the generation exits', async () => {
    const open = (): Promise<{ socket: net.Socket; answer(raw: string): Promise<string>; closed: Promise<void> }> =>
      new Promise((resolve, reject) => {
        const socket = net.connect(leanPort, '127.0.0.1');
        let got = '';
        let waiting: ((s: string) => void) | undefined;
        socket.on('data', (c: Buffer) => {
          got += c.toString('latin1');
          const end = got.indexOf('\r\n\r\n');
          const length = /content-length: (\d+)/i.exec(got)?.[1];
          if (end !== -1 && length !== undefined && got.length >= end + 4 + Number(length)) {
            const w = waiting;
            waiting = undefined;
            const answer = got;
            got = '';
            w?.(answer);
          }
        });
        const closed = new Promise<void>((r) =>
          socket.once('close', () => {
            // Closed before a whole answer: the test fails on what came, instead of waiting for its timeout.
            waiting?.(`closed; got: ${got}`);
            r();
          }),
        );
        socket.once('error', reject);
        socket.once('connect', () =>
          resolve({
            socket,
            closed,
            answer: (raw) =>
              new Promise((r) => {
                waiting = r;
                socket.write(raw);
              }),
          }),
        );
      });
    const [busy, idle] = await Promise.all([open(), open()]);
    expect(await busy.answer(get('/'))).toContain('Connection: keep-alive');
    expect(await idle.answer(get('/'))).toContain('Connection: keep-alive');
    expect((await lean.reload()).body).toMatchObject({ ok: true, generation: 2 });
    const last = await busy.answer(get('/'));
    expect(last).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(last).toContain('Connection: close');
    await busy.closed;
    // The other one sends nothing more: idle_timeout (5 s) closes it, and generation 1 is gone.
    await idle.closed;
    await lean.workerState(1, 'exited');
  });
});
