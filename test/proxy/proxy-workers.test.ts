// The proxy with several workers answers for its generation: what an admin POST changes, every
// worker changes (and a worker restarted in its slot starts changed), whichever worker took it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatonProcess } from '../helpers/baton.ts';
import { activeProxy, addresses, request, startProxyBaton, statValue } from './harness.ts';
import { startUpstream, type Upstream } from './upstreams.ts';

let baton: BatonProcess;
let web: number;
let admin: number;
let checked: Upstream;
const INTERVAL_MS = 100;
const token = crypto.randomBytes(24).toString('hex');
const tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-proxy-workers-'));
const auth = { authorization: `Bearer ${token}` };

interface ServerInfo {
  pid: number;
  worker: number;
  generation: number;
  health_check_failing: boolean;
}

/**
 * /server_info on `n` fresh connections: the kernel hashes each to one worker's socket, so 40
 * reach both workers but for a chance of 2^-39.
 */
async function serverInfos(n = 40): Promise<ServerInfo[]> {
  const out: ServerInfo[] = [];
  for (let i = 0; i < n; i++) out.push(JSON.parse((await request(admin, { path: '/server_info' })).body.toString()) as ServerInfo);
  return out;
}

async function statuses(pathName: string, n = 20): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await request(web, { path: pathName })).status);
  return out;
}

const healthStatuses = (n?: number): Promise<number[]> => statuses('/healthz', n);

/** Health probes the upstream receives over `ms`, and the window's true length. */
async function probesOver(ms: number): Promise<{ probes: number; ms: number }> {
  const before = checked.healthProbes;
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { probes: checked.healthProbes - before, ms: performance.now() - start };
}

const workerPids = async (generation: number): Promise<number[]> =>
  (await baton.status()).generations.find((g) => g.generation === generation)?.workers?.map((w) => w.pid) ?? [];

beforeAll(async () => {
  checked = await startUpstream('checked');
  fs.writeFileSync(path.join(tokenDir, 'admin.token'), token, { mode: 0o600 });
  const l = await addresses('web', 'admin');
  web = l.web!.port;
  admin = l.admin!.port;
  baton = startProxyBaton({
    workers: 2,
    balance: 'reuseport',
    restart: { 'backoff-initial': '50ms' },
    listeners: [l.web!, l.admin!].map(({ name, address }) => ({ name, address })),
    app: {
      listeners: {
        web: {
          protocol: 'http',
          health_path: '/healthz',
          routes: [
            { match: { prefix: '/checked' }, cluster: 'checked' },
            { match: { prefix: '/' }, direct_response: { status: 200, body: 'direct\n' } },
          ],
        },
      },
      clusters: {
        checked: {
          endpoints: [checked.address],
          health_check: { path: '/healthz', interval: `${INTERVAL_MS}ms`, timeout: '500ms', healthy_threshold: 1, unhealthy_threshold: 1 },
        },
      },
      admin: { listener: 'admin', token_file: path.join(tokenDir, 'admin.token') },
    },
  });
  await activeProxy(baton);
}, 40_000);

afterAll(async () => {
  await baton?.cleanup();
  await checked?.close();
  fs.rmSync(tokenDir, { recursive: true, force: true });
});

describe('proxy with workers: 2 — one admin answer for the generation', () => {
  it('/healthcheck/fail taken by one worker fails the health path of both, and of a worker restarted in its slot; /healthcheck/ok passes all again', async () => {
    const pids = await workerPids(1);
    expect(pids).toHaveLength(2);
    const before = await serverInfos();
    expect(new Set(before.map((i) => i.pid))).toEqual(new Set(pids));
    expect(before.every((i) => !i.health_check_failing)).toBe(true);
    // /memory is one worker's, and says which.
    const memory = JSON.parse((await request(admin, { path: '/memory' })).body.toString()) as { rss: number; worker: number; pid: number };
    expect(memory.rss).toBeGreaterThan(0);
    expect(pids[memory.worker]).toBe(memory.pid);

    expect((await request(admin, { path: '/healthcheck/fail', method: 'POST', headers: auth })).status).toBe(200);
    const failing = await serverInfos();
    expect(new Set(failing.map((i) => i.pid))).toEqual(new Set(pids));
    expect(failing.filter((i) => !i.health_check_failing)).toEqual([]);
    expect(new Set(await healthStatuses())).toEqual(new Set([503]));

    // Worker 1 dies: its slot's new process starts with the generation's values.
    const restarted = baton.waitForEvent('worker-restarted', (e) => e.generation === 1 && e.worker === 1);
    process.kill(pids[1] as number, 'SIGKILL');
    const replacement = (await restarted).pid;
    expect(replacement).not.toBe(pids[1]);
    const after = await serverInfos();
    expect(new Set(after.map((i) => i.pid))).toEqual(new Set([pids[0], replacement]));
    expect(after.filter((i) => !i.health_check_failing)).toEqual([]);

    expect((await request(admin, { path: '/healthcheck/ok', method: 'POST', headers: auth })).status).toBe(200);
    expect((await serverInfos()).filter((i) => i.health_check_failing)).toEqual([]);
    expect(new Set(await healthStatuses())).toEqual(new Set([200]));
  }, 60_000);

  it('health checks: worker 0 alone probes for the generation (and its replacement after it), the healthy gauge counts each endpoint once, every worker follows', async () => {
    expect(await statValue(admin, 'cluster.checked.health_check.healthy')).toBe(1);
    // A round is scheduled one interval after the last one ended, so one prober fits at most
    // ms / interval + 1 probes in the window; two workers probing each would make about twice that.
    const one = await probesOver(2000);
    console.log(`health probes of one endpoint by 2 workers: ${one.probes} in ${Math.round(one.ms)} ms (interval ${INTERVAL_MS} ms)`);
    expect(one.probes).toBeGreaterThan(0);
    expect(one.probes).toBeLessThanOrEqual(Math.floor(one.ms / INTERVAL_MS) + 1);

    checked.healthy = false;
    await expect.poll(async () => new Set(await statuses('/checked')), { timeout: 10_000 }).toEqual(new Set([503]));
    expect(await statValue(admin, 'cluster.checked.health_check.healthy')).toBe(0);

    const pids = await workerPids(1);
    const restarted = baton.waitForEvent('worker-restarted', (e) => e.generation === 1 && e.worker === 0);
    process.kill(pids[0] as number, 'SIGKILL');
    await restarted;
    checked.healthy = true;
    await expect.poll(async () => new Set(await statuses('/checked')), { timeout: 10_000 }).toEqual(new Set([200]));
    expect(await statValue(admin, 'cluster.checked.health_check.healthy')).toBe(1);
    const after = await probesOver(1000);
    expect(after.probes).toBeGreaterThan(0);
    expect(after.probes).toBeLessThanOrEqual(Math.floor(after.ms / INTERVAL_MS) + 1);
  }, 60_000);

  it('health checks: with worker 0 stopped, worker 1 takes the probing over (alone), and gives it back once worker 0 is heard again', async () => {
    const pids = await workerPids(1);
    const [zero, one] = pids as [number, number];
    /** The first line after `mark` (an index into the run's lines) that `match` accepts. */
    const logAfter = (mark: number, match: (l: Record<string, unknown>) => boolean) =>
      baton.waitForLog((l) => baton.lines.indexOf(l) >= mark && match(l as Record<string, unknown>), 15_000);
    const stoppedAt = baton.lines.length;
    process.kill(zero, 'SIGSTOP');
    try {
      const took = await logAfter(stoppedAt, (l) => l.event === 'health-lead' && l.leading === true);
      expect(took.pid).toBe(one);
      // Worker 1 alone probes now: at most one prober's rounds in the window.
      const alone = await probesOver(1000);
      console.log(`health probes with worker 0 stopped: ${alone.probes} in ${Math.round(alone.ms)} ms (interval ${INTERVAL_MS} ms)`);
      expect(alone.probes).toBeGreaterThan(0);
      expect(alone.probes).toBeLessThanOrEqual(Math.floor(alone.ms / INTERVAL_MS) + 1);
      // It acts on what it sees: the endpoint failing is worker 1's finding, logged by it.
      const failedAt = baton.lines.length;
      checked.healthy = false;
      expect((await logAfter(failedAt, (l) => l.event === 'endpoint-health' && l.healthy === false)).pid).toBe(one);
      checked.healthy = true;
      expect((await logAfter(failedAt, (l) => l.event === 'endpoint-health' && l.healthy === true)).pid).toBe(one);
    } finally {
      process.kill(zero, 'SIGCONT');
    }
    const resumedAt = baton.lines.length;
    expect((await logAfter(resumedAt, (l) => l.event === 'health-lead' && l.leading === false)).pid).toBe(one);
    const back = await probesOver(1000);
    expect(back.probes).toBeGreaterThan(0);
    expect(back.probes).toBeLessThanOrEqual(Math.floor(back.ms / INTERVAL_MS) + 1);
    expect(await workerPids(1)).toEqual(pids);
    await expect.poll(async () => new Set(await statuses('/checked')), { timeout: 10_000 }).toEqual(new Set([200]));
    await expect.poll(() => statValue(admin, 'cluster.checked.health_check.healthy'), { timeout: 10_000 }).toBe(1);
  }, 60_000);

  it('/drain_listeners stops every worker accepting: requests on both sockets wait for the next generation', async () => {
    expect((await request(admin, { path: '/drain_listeners', method: 'POST', headers: auth })).status).toBe(200);
    // Ten fresh connections land on both workers' sockets; had one worker kept accepting, its
    // share would be answered by generation 1 before the reload below has started.
    const ids = Array.from({ length: 10 }, (_, i) => `after-drain-${i}`);
    const answers = ids.map((id) => request(web, { path: '/', headers: { 'x-request-id': id } }));
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual(ids.map(() => 200));
    for (const id of ids) expect((await baton.waitForLog((l) => l.request_id === id)).generation).toBe(2);
    // The new generation starts with none of the old one's values: it accepts, and its health path passes.
    expect(new Set(await healthStatuses())).toEqual(new Set([200]));
  }, 60_000);
});
