import fs from 'node:fs';
import type http2 from 'node:http2';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll } from '../helpers/baton.ts';
import { addresses, request, startProxyBaton, statValue, type ProxyFile } from './harness.ts';
import { h2Connect, h2Request, handshake, httpsRequest, startTlsLoad } from './tls-clients.ts';
import { fingerprintOf, TestPki, type Issued } from './tls-pki.ts';
import { startUpstream, type Upstream } from './upstreams.ts';

let pki: TestPki;
let first: Issued;
let second: Issued;
let expired: Issued;
const upstreams: Upstream[] = [];

beforeAll(() => {
  pki = new TestPki();
  first = pki.issue('first', ['a.test']);
  second = pki.issue('second', ['a.test']);
  expired = pki.issue('expired', ['a.test'], { expired: true });
});
afterAll(() => pki.cleanup());
afterEach(async () => {
  await cleanupAll();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

async function upstream(name: string): Promise<Upstream> {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
}

/** A directory holding `cert.pem` and `key.pem`, replaced the way certbot does: new files renamed over the old. */
function liveDir(): { dir: string; cert: string; key: string; install(c: Issued): void } {
  const dir = fs.mkdtempSync(path.join(pki.dir, 'live-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  return {
    dir,
    cert,
    key,
    install(c) {
      fs.copyFileSync(c.chain, `${cert}.new`);
      fs.copyFileSync(c.key, `${key}.new`);
      fs.renameSync(`${key}.new`, key);
      fs.renameSync(`${cert}.new`, cert);
    },
  };
}

function tlsFile(l: Record<string, { address: string }>, endpoint: string, tls: Record<string, unknown>, app: Record<string, unknown> = {}): ProxyFile {
  return {
    listeners: [{ name: 'web', address: l.web!.address }, { name: 'admin', address: l.admin!.address }],
    app: {
      listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'main' }], tls } },
      clusters: { main: { endpoints: [endpoint] } },
      admin: { listener: 'admin' },
      access_log: { enabled: true },
      ...app,
    },
  };
}

/** Polls new handshakes until one shows the certificate with `fingerprint` (a new connection may reach the old generation until its drain lands). */
async function expectServedCert(port: number, fingerprint: string): Promise<void> {
  await expect.poll(async () => (await handshake(port, { servername: 'a.test' })).fingerprint, { timeout: 10_000, interval: 50 }).toBe(fingerprint);
}

/** The proxy's access log (on the supervisor's stdout) has no line for any of `ids`: those streams never reached it. */
function expectNeverSeen(lines: readonly { msg: string; [k: string]: unknown }[], ids: readonly string[]): void {
  const seen = new Set(lines.filter((x) => x.msg === 'access').map((x) => x.request_id));
  expect(seen.size).toBeGreaterThan(0);
  expect(ids.filter((id) => seen.has(id))).toEqual([]);
}

describe('proxy: TLS across reloads', () => {
  it('a rotated certificate under TLS load (keep-alive, new connections, HTTP/2 streams): 0 failed, the next handshake shows it, sessions resume on the new generation', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    const live = liveDir();
    live.install(first);
    const baton = startProxyBaton(tlsFile(l, a.address, { certificates: [{ cert: live.cert, key: live.key }] }));
    await baton.active(1);
    const port = l.web!.port;
    const before = await handshake(port, { servername: 'a.test' });
    expect(before.fingerprint).toBe(fingerprintOf(first.cert));
    // TLS 1.2 too: its resumption is by ticket the same way.
    const before12 = await handshake(port, { servername: 'a.test', maxVersion: 'TLSv1.2' });
    expect(before.session && before12.session).toBeTruthy();

    const load = startTlsLoad(port, pki.ca(), { keepAlive: 3, newConnection: 3, h2: 2, h2Concurrency: 4 });
    await load.progress(200);
    live.install(second);
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    await load.progress(200);
    await expectServedCert(port, fingerprintOf(second.cert));
    live.install(first);
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 3 });
    await load.progress(200);
    await expectServedCert(port, fingerprintOf(first.cert));
    const counts = await load.stop();
    console.log(`TLS reload under load: 2 reloads, ${counts.requests} requests, ${counts.ok} ok, ${counts.failed} failed, ${counts.h2Sessions} HTTP/2 sessions, ${counts.h2Unsent.length} HTTP/2 streams refused (not processed), retried; failures: ${counts.failures.slice(0, 5).join('; ')}`);
    expect(counts.failures).toEqual([]);
    expect(counts.ok).toBe(counts.requests);
    expectNeverSeen(baton.lines, counts.h2Unsent);
    // Every stream the proxy took (its counter runs across generations) was answered.
    expect(await statValue(l.admin!.port, 'http.web.http2.streams_total')).toBe(counts.h2Ok);
    // The GOAWAY of each drain moved the HTTP/2 clients to a new session.
    expect(counts.h2Sessions).toBeGreaterThanOrEqual(4);

    // Once generations 1 and 2 are gone, only generation 3 can answer: sessions made with generation 1 resume there.
    await baton.waitForEvent('worker-state', (e) => e.generation === 2 && e.from === 'draining' && e.to === 'exited');
    await baton.waitForEvent('worker-state', (e) => e.generation === 1 && e.from === 'draining' && e.to === 'exited');
    const resumed = await handshake(port, { servername: 'a.test', session: before.session! });
    expect(resumed.reused).toBe(true);
    const resumed12 = await handshake(port, { servername: 'a.test', maxVersion: 'TLSv1.2', session: before12.session! });
    expect(resumed12.reused).toBe(true);
    expect(await statValue(l.admin!.port, 'listener.web.ssl.session_reused')).toBeGreaterThanOrEqual(2);
  });

  it('a bad certificate fails the reload (exit 2, the file and the problem); the old one keeps serving', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    const live = liveDir();
    live.install(first);
    const baton = startProxyBaton(tlsFile(l, a.address, { certificates: [{ cert: live.cert, key: live.key }] }));
    await baton.active(1);
    const port = l.web!.port;
    live.install(expired);
    const reply = await baton.reload();
    expect(reply.status).toBe(409);
    expect(reply.body.error?.message).toMatch(/exited with code 2/);
    expect(reply.body.error?.message).toContain(`the certificate in ${live.cert} expired on 2020-02-01`);
    // A key that belongs to another certificate.
    fs.copyFileSync(first.chain, live.cert);
    fs.copyFileSync(second.key, live.key);
    const mismatch = await baton.reload();
    expect(mismatch.status).toBe(409);
    expect(mismatch.body.error?.message).toContain(`the key in ${live.key} does not match the certificate in ${live.cert}`);
    expect((await handshake(port, { servername: 'a.test' })).fingerprint).toBe(fingerprintOf(first.cert));
    expect((await httpsRequest(port, { ca: pki.ca(), path: '/' })).body).toBe('upstream a\n');
    const info = JSON.parse((await request(l.admin!.port, { path: '/server_info' })).body.toString()) as { generation: number };
    expect(info.generation).toBe(1);
  });

  it('GOAWAY drain: 100 streams open on one HTTP/2 session across a reload all finish; the client moves to the new generation', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    const file = tlsFile(l, a.address, { certificates: [{ cert: first.chain, key: first.key }] });
    const baton = startProxyBaton(file);
    await baton.active(1);
    const port = l.web!.port;
    const session: http2.ClientHttp2Session = await h2Connect(port, pki.ca());
    let goaway: { code: number; lastStreamID: number; at: number } | undefined;
    session.on('goaway', (code, lastStreamID) => (goaway ??= { code, lastStreamID, at: Date.now() }));
    const seen = a.requests;
    let firstAnswer = Infinity;
    const streams = Array.from({ length: 100 }, () =>
      h2Request(session, '/slow?ms=6000')
        .catch((err: Error) => ({ status: 0, headers: {}, body: err.message }))
        .finally(() => (firstAnswer = Math.min(firstAnswer, Date.now()))),
    );
    // Every stream has reached the upstream: they are all open through the proxy.
    await expect.poll(() => a.requests - seen, { timeout: 10_000, interval: 20 }).toBe(100);
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    await expect.poll(() => goaway?.code, { timeout: 10_000 }).toBe(0);
    const answers = await Promise.all(streams);
    expect(answers.filter((r) => r.status !== 200).map((r) => r.body)).toEqual([]);
    expect(answers.every((r) => r.body === 'upstream a slow\n')).toBe(true);
    // The GOAWAY came while all 100 streams were still open, and named them all as taken.
    expect(goaway!.at).toBeLessThan(firstAnswer);
    await expect.poll(() => session.closed).toBe(true);
    const next = await h2Connect(port, pki.ca());
    expect((await h2Request(next, '/')).status).toBe(200);
    next.close();
    expect(await statValue(l.admin!.port, 'http.web.http2.goaway_sent')).toBeGreaterThanOrEqual(1);
    await baton.waitForEvent('worker-state', (e) => e.generation === 1 && e.from === 'draining' && e.to === 'exited');
  });

  it('tls.watch: a renewal swapped in by rename (cert-manager style) reloads; a bad renewal fails and the old certificate keeps serving', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    // cert-manager / kubelet layout: tls.crt -> ..data/tls.crt, ..data -> ..v1, swapped by renaming a new ..data over it.
    const dir = fs.mkdtempSync(path.join(pki.dir, 'secret-'));
    let version = 0;
    const publish = (c: Issued): void => {
      version += 1;
      const v = path.join(dir, `..v${version}`);
      fs.mkdirSync(v);
      fs.copyFileSync(c.chain, path.join(v, 'tls.crt'));
      fs.copyFileSync(c.key, path.join(v, 'tls.key'));
      fs.symlinkSync(`..v${version}`, path.join(dir, '..data_tmp'));
      fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    };
    publish(first);
    fs.symlinkSync('..data/tls.crt', path.join(dir, 'tls.crt'));
    fs.symlinkSync('..data/tls.key', path.join(dir, 'tls.key'));
    const baton = startProxyBaton(tlsFile(l, a.address, { certificates: [{ cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') }], watch: true }, { tls: { watch_debounce: '200ms' } }));
    await baton.active(1);
    const port = l.web!.port;
    const load = startTlsLoad(port, pki.ca(), { keepAlive: 2, newConnection: 2, h2: 1 });
    await load.progress(100);
    publish(second);
    await baton.active(2);
    await expectServedCert(port, fingerprintOf(second.cert));
    await load.progress(100);

    publish(expired);
    const failed = await baton.waitForLog((x) => x.event === 'tls.reload_failed');
    expect(String(failed.err)).toMatch(/expired on 2020-02-01/);
    expect((await handshake(port, { servername: 'a.test' })).fingerprint).toBe(fingerprintOf(second.cert));
    await load.progress(100);
    const counts = await load.stop();
    expect(counts.failures).toEqual([]);
    expect(counts.ok).toBe(counts.requests);
    expectNeverSeen(baton.lines, counts.h2Unsent);
    // The failed reload was not retried on the same files, and nothing else reloaded.
    const status = await baton.status();
    expect(status.generations.filter((g) => g.state !== 'exited').map((g) => g.generation)).toContain(2);
    expect(baton.events.filter((e) => e.type === 'generation-active')).toHaveLength(2);
  });

  // The bounded reproduction of #18's stream loss: BATON_H2_SOAK=20 runs 20 reloads under
  // HTTP/2 load (about a minute); off by default, the test above covers the same ground in two.
  const soak = Number(process.env.BATON_H2_SOAK ?? 0);
  it.skipIf(!soak)(`HTTP/2 soak: ${soak || 'BATON_H2_SOAK'} reloads under HTTP/2 load: every stream the proxy took is answered, every other one refused and never seen${soak ? '' : ' — skipped unless BATON_H2_SOAK=N'}`, { timeout: 600_000 }, async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    const baton = startProxyBaton(tlsFile(l, a.address, { certificates: [{ cert: first.chain, key: first.key }] }));
    await baton.active(1);
    const load = startTlsLoad(l.web!.port, pki.ca(), { keepAlive: 0, newConnection: 0, h2: 3, h2Concurrency: 8, maxMs: 550_000 });
    await load.progress(200);
    for (let n = 0; n < soak; n++) {
      expect((await baton.reload()).body).toMatchObject({ ok: true });
      await load.progress(300);
    }
    const counts = await load.stop();
    const taken = await statValue(l.admin!.port, 'http.web.http2.streams_total');
    console.log(`HTTP/2 soak: ${soak} reloads, ${counts.requests} streams, ${counts.h2Ok} answered, ${counts.failed} failed, ${counts.h2Unsent.length} refused and retried; the proxy took ${taken}, the upstream saw ${a.requests}; failures: ${counts.failures.slice(0, 5).join('; ')}`);
    expect(counts.failures).toEqual([]);
    expect(taken).toBe(counts.h2Ok);
    expect(a.requests).toBe(counts.h2Ok);
    expectNeverSeen(baton.lines, counts.h2Unsent);
  });
});
