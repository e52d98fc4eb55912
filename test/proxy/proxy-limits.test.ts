import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupAll, NODE_FLAGS, ROOT } from '../helpers/baton.ts';
import { addresses, request, startProxyBaton, statValue, type ProxyFile } from './harness.ts';
import { startUpstream, type Upstream } from './upstreams.ts';

const upstreams: Upstream[] = [];
afterEach(async () => {
  await cleanupAll();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

async function upstream(name: string, socketPath?: string): Promise<Upstream> {
  const u = await startUpstream(name, socketPath ? { socketPath } : {});
  upstreams.push(u);
  return u;
}

function single(l: { web: { address: string }; admin?: { address: string } }, cluster: Record<string, unknown>): ProxyFile {
  return {
    listeners: [{ name: 'web', address: l.web.address }, ...(l.admin ? [{ name: 'admin', address: l.admin.address }] : [])],
    app: {
      listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'main' }] } },
      clusters: { main: cluster },
      ...(l.admin ? { admin: { listener: 'admin' } } : {}),
    },
  };
}

describe('proxy: cluster limits, balancing, endpoints, drain', () => {
  it('max_connections and max_pending_requests: a request beyond both gets 503, the others wait their turn', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    const baton = startProxyBaton(single({ web: l.web!, admin: l.admin! }, { endpoints: [a.address], max_connections: 1, max_pending_requests: 1 }));
    await baton.active(1);
    const first = request(l.web!.port, { path: '/slow?ms=3000' });
    while (a.requests < 1) await new Promise((r) => setTimeout(r, 5));
    const second = request(l.web!.port, { path: '/slow?ms=10' });
    // The second waits in the pending queue; the third finds it full.
    while ((await statValue(l.admin!.port, 'cluster.main.upstream_rq_pending_active')) < 1) await new Promise((r) => setTimeout(r, 5));
    expect(a.requests).toBe(1);
    const third = await request(l.web!.port, { path: '/' });
    expect(third.status).toBe(503);
    expect(third.body.toString()).toMatch(/upstream overflow/);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(await statValue(l.admin!.port, 'cluster.main.upstream_rq_pending_overflow')).toBe(1);
  });

  it('least_request sends new requests to the endpoint with fewer in flight', async () => {
    const [a, b] = [await upstream('a'), await upstream('b')];
    const l = await addresses('web');
    const baton = startProxyBaton(single({ web: l.web! }, { endpoints: [a.address, b.address], lb_policy: 'least_request' }));
    await baton.active(1);
    const slow = request(l.web!.port, { path: '/slow?ms=1500' });
    while (a.requests + b.requests < 1) await new Promise((r) => setTimeout(r, 5));
    const busy = a.requests === 1 ? 'a' : 'b';
    const bodies = new Set<string>();
    for (let i = 0; i < 10; i++) bodies.add((await request(l.web!.port, { path: '/' })).body.toString());
    expect([...bodies]).toEqual([`upstream ${busy === 'a' ? 'b' : 'a'}\n`]);
    expect((await slow).body.toString()).toBe(`upstream ${busy} slow\n`);
  });

  it('forwards to Unix-socket endpoints', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-unix-'));
    const u = await upstream('unix', path.join(dir, 'up.sock'));
    const l = await addresses('web');
    const baton = startProxyBaton(single({ web: l.web! }, { endpoints: [u.address] }));
    await baton.active(1);
    expect((await request(l.web!.port, { path: '/' })).body.toString()).toBe('upstream unix\n');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a request in flight during a reload finishes on the old generation, whose pools close after it', async () => {
    const a = await upstream('a');
    const l = await addresses('web');
    const baton = startProxyBaton(single({ web: l.web! }, { endpoints: [a.address] }));
    await baton.active(1);
    const slow = request(l.web!.port, { path: '/slow?ms=1500' });
    while (a.requests < 1) await new Promise((r) => setTimeout(r, 5));
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    const answer = await slow;
    expect([answer.status, answer.headers.connection, answer.body.toString()]).toEqual([200, 'close', 'upstream a slow\n']);
    expect(await baton.workerState(1, 'exited')).toMatchObject({ from: 'draining', code: 0 });
  });

  it('runs without Baton: binds the listener addresses itself, drains and exits 0 on SIGTERM', async () => {
    const a = await upstream('a');
    const l = await addresses('web');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-standalone-'));
    const file = path.join(dir, 'proxy.yaml');
    fs.writeFileSync(file, stringify(single({ web: l.web! }, { endpoints: [a.address] })));
    const child = execa(process.execPath, [...NODE_FLAGS, path.join(ROOT, 'proxy/main.ts'), '--config', file], { reject: false, buffer: false, timeout: 30_000 });
    try {
      await new Promise<void>((resolve) => {
        child.stdout?.on('data', (c: Buffer) => {
          if (c.toString().includes('"proxy ready"')) resolve();
        });
      });
      expect((await request(l.web!.port, { path: '/' })).body.toString()).toBe('upstream a\n');
      child.kill('SIGTERM');
      expect((await child).exitCode).toBe(0);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
