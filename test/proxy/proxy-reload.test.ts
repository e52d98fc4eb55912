import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { cleanupAll } from '../helpers/baton.ts';
import { describeCounts, expectAllAnswered, startLoad } from '../helpers/load.ts';
import { addresses, fileFor, request, startProxyBaton, startUploads, statValue, type ProxyFile } from './harness.ts';
import { startUpstream, type Upstream } from './upstreams.ts';

const upstreams: Upstream[] = [];
afterEach(async () => {
  await cleanupAll();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

async function upstream(name: string): Promise<Upstream> {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
}

function httpListener(cluster: string): Record<string, unknown> {
  return { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster }] };
}

describe('proxy: reload', () => {
  it('under keep-alive and new-connection load: a listener added, one removed, a cluster changed — 0 failed, stats continuous', async () => {
    const [a, b, c] = [await upstream('a'), await upstream('b'), await upstream('c')];
    const l = await addresses('web', 'old', 'extra', 'admin');
    const file = (listeners: string[], endpoints: string[]): ProxyFile => ({
      listeners: listeners.map((n) => ({ name: n, address: l[n]!.address })),
      app: {
        listeners: Object.fromEntries(listeners.filter((n) => n !== 'admin').map((n) => [n, httpListener('main')])),
        clusters: { main: { endpoints } },
        admin: { listener: 'admin' },
      },
    });
    const baton = startProxyBaton(file(['web', 'old', 'admin'], [a.address]));
    await baton.active(1);
    const admin = l.admin!.port;
    const load = startLoad({ port: l.web!.port }, { keepAlive: 4, newConnection: 4 });
    await load.progress(5);
    let last = await statValue(admin, 'http.web.downstream_rq_total');
    const continuous = async (): Promise<void> => {
      const now = await statValue(admin, 'http.web.downstream_rq_total');
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    };

    // A keep-alive client of the listener that will be removed, idle across the reloads.
    const oldAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect((await request(l.old!.port, { path: '/', agent: oldAgent })).status).toBe(200);

    // 1: a listener added.
    baton.writeConfig(fileFor(baton.configPath, file(['web', 'old', 'extra', 'admin'], [a.address])));
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    await load.progress(3);
    expect((await request(l.extra!.port, { path: '/' })).body.toString()).toBe('upstream a\n');
    await continuous();

    // 2: the cluster's endpoints changed.
    // Counted before the reload: the new generation answers the load before the reload's own reply reaches us.
    const before = load.counts.bodies.length;
    baton.writeConfig(fileFor(baton.configPath, file(['web', 'old', 'extra', 'admin'], [b.address, c.address])));
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 3 });
    await load.progress(5);
    expect(new Set(load.counts.bodies.slice(before))).toEqual(new Set(['upstream b', 'upstream c']));
    await continuous();
    // Generation 1 still drains (it holds the idle keep-alive connection): only the serving generation's hosts count.
    await expect.poll(() => statValue(admin, 'cluster.main.health_check.healthy'), { timeout: 5_000 }).toBe(2);

    // 3: a listener removed: its idle keep-alive connection is answered once more, with
    // Connection: close, by the generation that still holds it.
    baton.writeConfig(fileFor(baton.configPath, file(['web', 'extra', 'admin'], [b.address, c.address])));
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 4 });
    await load.progress(5);
    await continuous();

    const counts = await load.stop();
    console.log(`proxy reload under load: 3 reloads, ${describeCounts(counts)}`);
    expectAllAnswered(counts);
    // Counters continue across generations: every request of the load is counted.
    expect(await statValue(admin, 'http.web.downstream_rq_total')).toBeGreaterThanOrEqual(counts.requests);
    const info = JSON.parse((await request(admin, { path: '/server_info' })).body.toString()) as { generation: number };
    expect(info.generation).toBe(4);
    oldAgent.destroy();
    // Once the generations that had it are gone, the removed listener is closed.
    await baton.workerState(3, 'exited');
    // (the supervisor closes it just after logging the exit: a connection in between is reset.)
    const deadline = Date.now() + 5_000;
    let code = '';
    while (code !== 'ECONNREFUSED' && Date.now() < deadline) {
      code = await request(l.old!.port, { path: '/' }).then(
        () => 'answered',
        (err: NodeJS.ErrnoException) => err.code ?? '',
      );
      expect(code).not.toBe('answered');
    }
    expect(code).toBe('ECONNREFUSED');
  });

  it('5 reloads under upload load (256 KiB bodies echoed, keep-alive and new connections): every body comes back whole', async () => {
    const [a, b] = [await upstream('a'), await upstream('b')];
    const l = await addresses('web');
    const file = (endpoints: string[]): ProxyFile => ({
      listeners: [{ name: 'web', address: l.web!.address }],
      app: { listeners: { web: httpListener('main') }, clusters: { main: { endpoints } } },
    });
    const baton = startProxyBaton(file([a.address]));
    await baton.active(1);
    const uploads = startUploads(l.web!.port, { keepAlive: 2, newConnection: 2, bodyBytes: 256 * 1024 });
    for (let i = 0; i < 5; i++) {
      const seen = uploads.counts.ok;
      baton.writeConfig(fileFor(baton.configPath, file(i % 2 === 0 ? [b.address] : [a.address, b.address])));
      expect((await baton.reload()).body).toMatchObject({ ok: true, generation: i + 2 });
      while (uploads.counts.ok < seen + 8) await new Promise((r) => setTimeout(r, 10));
    }
    const counts = await uploads.stop();
    console.log(`proxy reload under uploads: 5 reloads, ${counts.requests} uploads, ${counts.ok} ok, failures: ${counts.failures.slice(0, 5).join('; ')}`);
    expect(counts.failures).toEqual([]);
    expect(counts.ok).toBe(counts.requests);
  });

  it('a removed listener drains: an idle keep-alive connection gets one more answer, with Connection: close', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'old');
    const file = (listeners: string[]): ProxyFile => ({
      listeners: listeners.map((n) => ({ name: n, address: l[n]!.address })),
      app: { listeners: Object.fromEntries(listeners.map((n) => [n, httpListener('main')])), clusters: { main: { endpoints: [a.address] } } },
    });
    const baton = startProxyBaton(file(['web', 'old']));
    await baton.active(1);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await request(l.old!.port, { path: '/', agent });
    expect(first.headers.connection).toBe('keep-alive');
    baton.writeConfig(fileFor(baton.configPath, file(['web'])));
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    const second = await request(l.old!.port, { path: '/', agent });
    expect([second.status, second.headers.connection]).toEqual([200, 'close']);
    await baton.workerState(1, 'exited');
    agent.destroy();
  });

  it('a WebSocket and a TCP stream keep working across a reload (until the drain timeout)', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'raw');
    const file: ProxyFile = {
      listeners: [l.web!, l.raw!].map(({ name, address }) => ({ name, address })),
      app: { listeners: { web: httpListener('main'), raw: { protocol: 'tcp', cluster: 'main' } }, clusters: { main: { endpoints: [a.address] } } },
    };
    const baton = startProxyBaton(file);
    await baton.active(1);
    const ws = new WebSocket(`ws://127.0.0.1:${l.web!.port}/`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const echo = (text: string): Promise<string> =>
      new Promise((resolve) => {
        ws.once('message', (d) => resolve(String(d)));
        ws.send(text);
      });
    expect(await echo('one')).toBe('a: one');
    const tcp = net.connect(l.raw!.port, '127.0.0.1');
    const exchange = (): Promise<string> =>
      new Promise((resolve) => {
        let text = '';
        const onData = (c: Buffer): void => {
          text += c.toString();
          if (text.endsWith('upstream a\n')) {
            tcp.off('data', onData);
            resolve(text);
          }
        };
        tcp.on('data', onData);
        tcp.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      });
    expect(await exchange()).toMatch(/^HTTP\/1\.1 200/);

    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    expect(await echo('two')).toBe('a: two');
    expect(await exchange()).toMatch(/^HTTP\/1\.1 200/);
    const fresh = new WebSocket(`ws://127.0.0.1:${l.web!.port}/`);
    await new Promise((resolve, reject) => fresh.once('open', resolve).once('error', reject));
    fresh.close();
    // Generation 1 still holds both streams; closing them lets it finish its drain.
    ws.close();
    tcp.end();
    await baton.workerState(1, 'exited');
  });

  it('a reload with an invalid file fails with the path and the problem; the serving generation is untouched', async () => {
    const a = await upstream('a');
    const l = await addresses('web');
    const good: ProxyFile = { listeners: [{ name: 'web', address: l.web!.address }], app: { listeners: { web: httpListener('main') }, clusters: { main: { endpoints: [a.address] } } } };
    const baton = startProxyBaton(good);
    await baton.active(1);
    baton.writeConfig(fileFor(baton.configPath, { ...good, app: { listeners: { web: httpListener('main') }, clusters: { main: { endpoints: ['not-an-endpoint'], lb_policy: 'random' } } } }));
    const reply = await baton.reload();
    expect(reply.status).toBe(409);
    const message = reply.body.error?.message ?? '';
    expect(message).toMatch(/exited with code 2/);
    expect(message).toMatch(/app\.clusters\.main\.lb_policy/);
    expect((await request(l.web!.port, { path: '/' })).body.toString()).toBe('upstream a\n');
    expect((await baton.status()).active).toBe(1);
  });
});
