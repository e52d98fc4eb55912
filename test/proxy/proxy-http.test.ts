import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { closeFd, sockName, tcpListen } from '../../shared/native/native.ts';
import type { BatonProcess, LogLine } from '../helpers/baton.ts';
import { freePort } from '../helpers/ports.ts';
import { activeProxy, addresses, rawExchange, request, startProxyBaton, statValue } from './harness.ts';
import { startUpstream, type Upstream } from './upstreams.ts';

let baton: BatonProcess;
let a: Upstream;
let b: Upstream;
let sick: Upstream;
let web: number;
let admin: number;
let raw: number;
/** A listening socket nobody accepts on, its queue full: connects to it hang until they time out. */
let blackhole: number;
const queued: net.Socket[] = [];
/** An upstream that answers every request with bytes that are not HTTP. */
let garbage: net.Server;
/** The admin listener's bearer token (its POSTs need it: the admin listener is TCP). */
const token = crypto.randomBytes(24).toString('hex');
const tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-proxy-http-'));
const auth = { authorization: `Bearer ${token}` };

beforeAll(async () => {
  [a, b, sick] = await Promise.all([startUpstream('a'), startUpstream('b'), startUpstream('sick')]);
  sick.healthy = false;
  const dead = await freePort();
  garbage = net.createServer((s) => s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')).on('error', () => {}));
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
  blackhole = tcpListen('127.0.0.1', 0, 0, false);
  const blackholePort = sockName(blackhole).port;
  // Backlog 0 queues one connection; once it is full the kernel drops further SYNs.
  for (let i = 0; i < 2; i++) queued.push(net.connect(blackholePort, '127.0.0.1').on('error', () => {}));
  fs.writeFileSync(path.join(tokenDir, 'admin.token'), token, { mode: 0o600 });
  const l = await addresses('web', 'admin', 'raw');
  web = l.web!.port;
  admin = l.admin!.port;
  raw = l.raw!.port;
  baton = startProxyBaton({
    listeners: [l.web!, l.admin!, l.raw!].map(({ name, address }) => ({ name, address })),
    app: {
      listeners: {
        web: {
          protocol: 'http',
          max_header_size: '8KiB',
          headers_timeout: '1s',
          idle_timeout: '1s',
          health_path: '/healthz',
          routes: [
            { match: { prefix: '/direct' }, direct_response: { status: 200, body: 'direct\n', headers: { 'x-direct': '1' } } },
            { match: { prefix: '/timeout/' }, cluster: 'slow', prefix_rewrite: '/slow', timeout: '300ms' },
            { match: { prefix: '/refused/' }, cluster: 'dead' },
            { match: { prefix: '/blackhole/' }, cluster: 'blackhole' },
            { match: { prefix: '/down/' }, cluster: 'down' },
            { match: { prefix: '/garbage/' }, cluster: 'garbage' },
            { match: { host: 'b.example', prefix: '/' }, cluster: 'only-b' },
            { match: { prefix: '/' }, cluster: 'main' },
          ],
        },
        raw: { protocol: 'tcp', cluster: 'main' },
      },
      clusters: {
        main: { endpoints: [a.address, b.address], lb_policy: 'round_robin' },
        'only-b': { endpoints: [b.address] },
        slow: { endpoints: [a.address] },
        dead: { endpoints: [`127.0.0.1:${dead}`], connect_timeout: '1s' },
        blackhole: { endpoints: [`127.0.0.1:${blackholePort}`], connect_timeout: '300ms' },
        garbage: { endpoints: [`127.0.0.1:${(garbage.address() as net.AddressInfo).port}`] },
        down: { endpoints: [sick.address], health_check: { path: '/healthz', interval: '200ms', timeout: '500ms', healthy_threshold: 1, unhealthy_threshold: 1 } },
      },
      admin: { listener: 'admin', token_file: path.join(tokenDir, 'admin.token') },
    },
  });
  await activeProxy(baton);
}, 40_000);

afterAll(async () => {
  await baton?.cleanup();
  await Promise.all([a, b, sick].map((u) => u?.close()));
  for (const s of queued) s.destroy();
  garbage?.close();
  if (blackhole !== undefined) closeFd(blackhole);
  fs.rmSync(tokenDir, { recursive: true, force: true });
});

describe('proxy: HTTP forwarding', () => {
  it('balances round-robin over keep-alive connections on both sides', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const bodies: string[] = [];
    const ports = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const r = await request(web, { path: '/', agent });
      expect(r.status).toBe(200);
      bodies.push(r.body.toString().trim());
      ports.add(Number(r.headers['x-test-port'] ?? 0));
    }
    agent.destroy();
    expect(new Set(bodies)).toEqual(new Set(['upstream a', 'upstream b']));
    expect(bodies.filter((x) => x === 'upstream a').length).toBe(3);
    expect(await statValue(admin, 'listener.web.downstream_cx_total')).toBeGreaterThanOrEqual(1);
  });

  it('routes by host and answers direct responses', async () => {
    for (let i = 0; i < 3; i++) expect((await request(web, { path: '/x', headers: { host: 'B.example:8080' } })).body.toString()).toBe('upstream b\n');
    const d = await request(web, { path: '/direct' });
    expect([d.status, d.body.toString(), d.headers['x-direct']]).toEqual([200, 'direct\n', '1']);
  });

  it('handles hop-by-hop headers per RFC 9110 and adds X-Forwarded-For/-Proto and a request id', async () => {
    const r = await request(web, {
      path: '/headers',
      headers: { host: 'b.example', connection: 'keep-alive, x-drop', 'x-drop': '1', 'keep-alive': 'timeout=9', te: 'trailers', 'proxy-connection': 'x', 'x-forwarded-for': '10.0.0.1', 'x-keep': 'yes' },
    });
    const seen = JSON.parse(r.body.toString()) as Record<string, string>;
    expect(seen['x-drop']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen['proxy-connection']).toBeUndefined();
    expect(seen['x-keep']).toBe('yes');
    expect(seen.host).toBe('b.example');
    expect(seen['x-forwarded-for']).toBe('10.0.0.1, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers['x-request-id']).toBe(seen['x-request-id']);
    // The upstream's own hop-by-hop fields stay on its side.
    expect(r.headers['x-hop']).toBeUndefined();
    expect(r.headers['keep-alive']).not.toBe('timeout=5');
    const kept = await request(web, { path: '/headers', headers: { host: 'b.example', 'x-request-id': 'abc-123' } });
    expect(JSON.parse(kept.body.toString())['x-request-id']).toBe('abc-123');
  });

  it('streams bodies of several MB both ways, chunked, without buffering them whole', async () => {
    const size = 8 * 1024 * 1024;
    const payload = crypto.randomBytes(size);
    const up = await request(web, { method: 'POST', path: '/echo', body: payload, headers: { 'content-type': 'application/octet-stream' } });
    expect(up.status).toBe(200);
    expect(up.body.length).toBe(size);
    expect(crypto.createHash('sha256').update(up.body).digest('hex')).toBe(crypto.createHash('sha256').update(payload).digest('hex'));
    const down = await request(web, { path: `/bytes?n=${size}` });
    expect(down.headers['transfer-encoding']).toBe('chunked');
    expect(down.body.length).toBe(size);
    expect(down.trailers['x-done']).toBe('yes');
    // Ping-pong on one chunked request: each chunk must come back before the next is sent.
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: web, method: 'POST', path: '/echo', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let rounds = 0;
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= (rounds + 1) * 1000) {
            rounds += 1;
            if (rounds === 5) req.end();
            else req.write(Buffer.alloc(1000, 'y'));
          }
        });
        res.on('end', () => (rounds === 5 ? resolve() : reject(new Error(`only ${rounds} rounds`))));
      });
      req.on('error', reject);
      req.write(Buffer.alloc(1000, 'y'));
    });
  });

  it('answers 503 when the upstream refuses, 504 when it is too slow, 503 when no endpoint is healthy', async () => {
    const refused = await request(web, { path: '/refused/x' });
    expect(refused.status).toBe(503);
    expect(refused.body.toString()).toMatch(/upstream connect error: ECONNREFUSED/);
    const slow = await request(web, { path: '/timeout/?ms=3000' });
    expect(slow.status).toBe(504);
    expect(slow.body.toString()).toMatch(/upstream timeout/);
    const down = await request(web, { path: '/down/x' });
    expect(down.status).toBe(503);
    expect(down.body.toString()).toMatch(/no healthy upstream/);
    expect(await statValue(admin, 'cluster.slow.upstream_rq_timeout')).toBeGreaterThanOrEqual(1);
    expect(await statValue(admin, 'cluster.dead.upstream_cx_connect_fail')).toBeGreaterThanOrEqual(1);
    expect(await statValue(admin, 'http.web.downstream_rq_5xx')).toBeGreaterThanOrEqual(3);
  });

  it('answers 503 when connecting to the upstream takes longer than connect_timeout', async () => {
    const started = performance.now();
    const answer = await request(web, { path: '/blackhole/x' });
    const took = performance.now() - started;
    expect([answer.status, answer.body.toString()]).toEqual([503, 'upstream connect error: connect timeout\n']);
    // undici's connect timer ticks coarsely, and a failed connect is retried: bounded, not exact.
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(6_000);
    expect(await statValue(admin, 'cluster.blackhole.upstream_cx_connect_fail')).toBeGreaterThanOrEqual(1);
  });

  it('an upstream reset is an answer (503) before the response, a cut connection after it — never a crash', async () => {
    const before = await statValue(admin, 'cluster.main.upstream_rq_retry');
    const reset = await request(web, { path: '/reset' });
    expect(reset.status).toBe(503);
    expect(reset.body.toString()).toMatch(/upstream reset before response/);
    // An idempotent request without a body was retried on the other endpoints first.
    expect(await statValue(admin, 'cluster.main.upstream_rq_retry')).toBeGreaterThanOrEqual(before + 2);
    const cut = await request(web, { path: '/reset-after-headers' }).then(
      (r) => `answered ${r.status} with ${r.body.length} bytes`,
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    expect(cut).toMatch(/ECONNRESET|aborted/);
    expect((await request(web, { path: '/' })).status).toBe(200);
  });

  it('active health checks take an endpoint out and bring it back', async () => {
    expect(await statValue(admin, 'cluster.down.health_check.healthy')).toBe(0);
    sick.healthy = true;
    // The proxy's own health records, by their fields: its log is the product here.
    const health = (healthy: boolean, since = 0) => (l: LogLine) =>
      l.event === 'endpoint-health' && l.cluster === 'down' && l.endpoint === sick.address && l.healthy === healthy && (l.time as number) >= since;
    await baton.waitForLog(health(true));
    expect((await request(web, { path: '/down/x' })).body.toString()).toBe('upstream sick\n');
    expect(await statValue(admin, 'cluster.down.health_check.healthy')).toBe(1);
    sick.healthy = false;
    const since = Date.now();
    const down = await baton.waitForLog(health(false, since));
    expect(down.reason).toBe('health check /healthz answered 503');
    expect((await request(web, { path: '/down/x' })).status).toBe(503);
  });

  it('answers a malformed request with 400 and oversized headers with 431, and stays up', async () => {
    const bad = await rawExchange(web, 'GARBAGE / NOT-HTTP\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    const big = await rawExchange(web, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(16 * 1024)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect((await request(web, { path: '/' })).status).toBe(200);
    expect(await statValue(admin, 'http.web.downstream_rq_rejected')).toBeGreaterThanOrEqual(2);
  });

  it('answers like other proxies: a bad chunk size 400, a duplicate or invalid Host 400, an absolute-form target routed by its authority, HTTP/2.0 on HTTP/1 400, CONNECT 405', async () => {
    // The body's first chunk size is not hex: the request was already on its way upstream.
    const chunk = await rawExchange(web, 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n');
    expect(chunk).toMatch(/^HTTP\/1\.1 400 /);
    const twoHosts = await rawExchange(web, 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n');
    expect(twoHosts).toMatch(/^HTTP\/1\.1 400 [^]*duplicate Host/);
    const badHost = await rawExchange(web, 'GET / HTTP/1.1\r\nHost: a b@c\r\nConnection: close\r\n\r\n');
    expect(badHost).toMatch(/^HTTP\/1\.1 400 [^]*invalid Host/);
    // RFC 9112 §3.2.2: the authority of an absolute-form target wins over the Host header.
    const absolute = await rawExchange(web, 'GET http://b.example/headers HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n');
    expect(absolute).toMatch(/^HTTP\/1\.1 200 /);
    const seen = JSON.parse(absolute.slice(absolute.indexOf('\r\n\r\n') + 4)) as Record<string, string>;
    expect(seen.host).toBe('b.example');
    expect(b.last?.host).toBe('b.example');
    const notATarget = await rawExchange(web, 'GET nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(notATarget).toMatch(/^HTTP\/1\.1 400 /);
    const version = await rawExchange(web, 'GET / HTTP/2.0\r\nHost: x\r\n\r\n');
    expect(version).toMatch(/^HTTP\/1\.1 400 [^]*unsupported HTTP version 2\.0/);
    const connect = await rawExchange(web, 'CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n');
    expect(connect).toMatch(/^HTTP\/1\.1 405 /);
    expect((await request(web, { path: '/' })).status).toBe(200);
  });

  it('answers 502 when the upstream sends something that is not an HTTP response', async () => {
    const r = await request(web, { path: '/garbage/x' });
    expect(r.status).toBe(502);
    expect(r.body.toString()).toMatch(/^bad upstream response/);
  });

  it('cuts a client that is too slow to send its headers (headers_timeout)', async () => {
    const started = Date.now();
    const answer = await rawExchange(web, 'GET / HTTP/1.1\r\nHost: x\r\n', 10_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(answer === '' || /^HTTP\/1\.1 408 /.test(answer)).toBe(true);
  });

  it('closes a keep-alive connection left idle past idle_timeout', async () => {
    const s = net.connect(web, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const answered = new Promise((r) => s.once('data', r));
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await answered;
    const idleSince = Date.now();
    await new Promise((r) => s.once('close', r));
    const idle = Date.now() - idleSince;
    expect(idle).toBeGreaterThanOrEqual(900);
    expect(idle).toBeLessThan(5_000);
  });

  it('passes WebSocket upgrades through', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${web}/chat`, { headers: { host: 'b.example' } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
    ws.send('hello');
    expect(await reply).toBe('b: hello');
    ws.close();
  });

  it('proxies TCP listeners to the cluster', async () => {
    const answer = await rawExchange(raw, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*upstream [ab]\n$/);
    expect(await statValue(admin, 'listener.raw.downstream_cx_total')).toBeGreaterThanOrEqual(1);
  });

  it('writes one access log line per request', async () => {
    await request(web, { path: '/direct?log=1', headers: { 'x-request-id': 'log-line-1' } });
    const line = await baton.waitForLog((l) => l.request_id === 'log-line-1');
    expect(line).toMatchObject({ listener: 'web', method: 'GET', path: '/direct?log=1', status: 200, bytes: 7, generation: 1 });
    expect(typeof line.duration_ms).toBe('number');
    await request(web, { path: '/', headers: { 'x-request-id': 'log-line-2' } });
    const upstream = await baton.waitForLog((l) => l.request_id === 'log-line-2');
    expect(upstream).toMatchObject({ cluster: 'main', status: 200 });
    expect(String(upstream.upstream)).toMatch(/^127\.0\.0\.1:\d+$/);
  });
});

describe('proxy: admin listener', () => {
  it('serves /stats, /stats/prometheus, /memory, /server_info, /ready and /config_dump', async () => {
    const stats = JSON.parse((await request(admin, { path: '/stats' })).body.toString()) as { stats: { name: string }[] };
    const names = stats.stats.map((s) => s.name);
    for (const n of ['listener.web.downstream_cx_total', 'listener.web.downstream_cx_active', 'http.web.downstream_rq_total', 'http.web.downstream_rq_2xx', 'http.web.downstream_rq_time', 'cluster.main.upstream_rq_total', 'cluster.main.upstream_cx_active', 'cluster.main.upstream_cx_connect_fail', 'cluster.main.upstream_rq_timeout', 'cluster.main.upstream_rq_time', 'cluster.main.health_check.healthy']) {
      expect(names).toContain(n);
    }
    const prom = await request(admin, { path: '/stats/prometheus' });
    const parser = 'parse-prometheus-text-format';
    const { default: parse } = (await import(parser)) as { default: (t: string) => { name: string; type: string }[] };
    const families = parse(prom.body.toString());
    expect(families.find((f) => f.name === 'baton_http_downstream_rq_time_seconds')?.type).toBe('HISTOGRAM');
    expect(families.map((f) => f.name)).toContain('baton_http_downstream_rq_total');
    const memory = JSON.parse((await request(admin, { path: '/memory' })).body.toString()) as Record<string, number>;
    expect(memory.rss).toBeGreaterThan(0);
    const info = JSON.parse((await request(admin, { path: '/server_info' })).body.toString()) as Record<string, unknown>;
    expect(info).toMatchObject({ state: 'LIVE', generation: 1, supervised: true, version: expect.any(String) });
    expect(info.hot_restart_version).toMatch(/^baton\.\d+\./);
    expect(info.uptime_current_epoch).toEqual(expect.any(Number));
    const ready = await request(admin, { path: '/ready' });
    expect([ready.status, ready.body.toString()]).toEqual([200, 'LIVE\n']);
    const dump = JSON.parse((await request(admin, { path: '/config_dump' })).body.toString()) as { listeners: { name: string }[] };
    expect(dump.listeners.map((x) => x.name).sort()).toEqual(['admin', 'raw', 'web']);
    expect((await request(admin, { path: '/nope' })).status).toBe(404);
    expect((await request(admin, { path: '/healthcheck/fail' })).status).toBe(405);
  });

  it('?filter= is a glob answered at once: a backtracking regex is refused with 400, so is a filter over 256 characters; the proxy keeps serving', async () => {
    const names = async (filter: string): Promise<string[]> => {
      const r = await request(admin, { path: `/stats?filter=${encodeURIComponent(filter)}` });
      expect(r.status, r.body.toString()).toBe(200);
      return (JSON.parse(r.body.toString()) as { stats: { name: string }[] }).stats.map((x) => x.name);
    };
    expect(await names('http.web.downstream_rq_?xx')).toEqual(expect.arrayContaining(['http.web.downstream_rq_2xx', 'http.web.downstream_rq_5xx']));
    expect((await names('cluster.*.upstream_rq_total')).sort()).toEqual(['blackhole', 'dead', 'down', 'garbage', 'main', 'only_b', 'slow'].map((c) => `cluster.${c}.upstream_rq_total`));
    expect(await names('listener.web.downstream_cx_total')).toEqual(['listener.web.downstream_cx_total']);

    // Answered within a second each (it once held the event loop ~100 s), the web listener answering alongside.
    const timed = async (filter: string): Promise<{ status: number; body: string; ms: number }> => {
      const t0 = performance.now();
      const [r, w] = await Promise.all([request(admin, { path: `/stats?filter=${encodeURIComponent(filter)}` }), request(web, { path: '/direct' })]);
      expect(w.status).toBe(200);
      return { status: r.status, body: r.body.toString(), ms: performance.now() - t0 };
    };
    const evil = await timed('(.*){1,7}X');
    expect(evil).toMatchObject({ status: 400, body: expect.stringMatching(/filter is a glob on stat names/) });
    expect(evil.ms).toBeLessThan(1000);
    // The glob's own worst case: many stars that almost match every name, at the length limit.
    const stars = await timed(`${'*_'.repeat(127)}Q`);
    expect(stars.status).toBe(200);
    expect(stars.ms).toBeLessThan(1000);
    const long = await timed('x'.repeat(257));
    expect(long).toMatchObject({ status: 400, body: expect.stringMatching(/filter is 257 characters long; at most 256 are accepted/) });
  });

  it('/healthcheck/fail and /healthcheck/ok switch the health path', async () => {
    expect((await request(web, { path: '/healthz' })).status).toBe(200);
    expect((await request(admin, { path: '/healthcheck/fail', method: 'POST', headers: auth })).status).toBe(200);
    expect((await request(web, { path: '/healthz' })).status).toBe(503);
    await request(admin, { path: '/healthcheck/ok', method: 'POST', headers: auth });
    expect((await request(web, { path: '/healthz' })).status).toBe(200);
  });

  it('/drain_listeners stops this generation accepting; the held socket keeps the connection for the next one', async () => {
    expect((await request(admin, { path: '/drain_listeners', method: 'POST', headers: auth })).status).toBe(200);
    // Nobody accepts now: the request waits in the kernel backlog of the socket Baton holds,
    // and the next generation answers it.
    const answer = request(web, { path: '/direct', headers: { 'x-request-id': 'after-drain-listeners' } });
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    expect((await answer).status).toBe(200);
    const line = await baton.waitForLog((l) => l.request_id === 'after-drain-listeners');
    expect(line.generation).toBe(2);
  });
});
