// The Prometheus text Baton writes passes `promtool check metrics` (Prometheus's own linter:
// HELP, TYPE, _total on counters, base units, no reserved labels) on all three surfaces: the
// supervisor's control socket, the TCP metrics listener and the proxy's admin listener, after
// a reload and a crash. promtool comes from Debian's `prometheus` package (.ci/run installs it).
import { execFile, spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../supervisor/config/config.ts';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { freePort, get } from '../helpers/ports.ts';
import { addresses, startProxyBaton } from '../proxy/harness.ts';

afterEach(cleanupAll);

const PROMTOOL = '/usr/bin/promtool';
const hasPromtool = spawnSync(PROMTOOL, ['--version']).status === 0;

/** promtool check metrics on `text`: its exit status and complaints. */
function promtool(text: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(PROMTOOL, ['check', 'metrics'], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
    child.stdin!.end(text);
  });
}

function requestRaw(port: number, method: string, path: string): Promise<{ status: number; allow?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(res.headers.allow ? { allow: res.headers.allow } : {}) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const upstream = http.createServer((req, res) => res.end(req.url === '/healthz' ? 'ok\n' : 'upstream\n'));
afterAll(() => upstream.close());

describe('promtool check metrics', () => {
  it.runIf(!hasPromtool)('needs promtool: apt-get install -y prometheus (Debian) — not installed, so this suite cannot pass', () => {
    expect.fail(`${PROMTOOL} is missing: apt-get install -y prometheus`);
  });

  it.runIf(hasPromtool)('passes on the supervisor, the TCP metrics listener and the proxy admin after a reload and a crash', async () => {
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    const l = await addresses('web', 'admin');
    const metricsPort = await freePort();
    const baton = startProxyBaton({
      listeners: [
        { name: 'web', address: l.web!.address },
        { name: 'admin', address: l.admin!.address },
      ],
      metrics: { listen: `127.0.0.1:${metricsPort}` },
      memory: { interval: '200ms' },
      restart: { 'backoff-initial': '10ms' },
      app: {
        listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'app' }] } },
        clusters: { app: { endpoints: [`127.0.0.1:${upstreamPort}`] } },
        admin: { listener: 'admin' },
      },
    });
    await baton.active(1);
    const web = { port: l.web!.port };
    for (let i = 0; i < 5; i++) expect((await get(web, '/x')).status).toBe(200);
    expect((await baton.reload()).body.ok).toBe(true);
    const victim = (await baton.status()).generations.find((g) => g.state === 'active')!;
    process.kill(victim.pid, 'SIGKILL');
    await baton.active(3);
    for (let i = 0; i < 5; i++) expect((await get(web, '/x')).status).toBe(200);
    // Memory gauges of the serving generation, labelled by its number (not a writer slot).
    await expect.poll(async () => (await get({ port: metricsPort }, '/metrics')).body, { timeout: 10_000 }).toMatch(/baton_memory_rss_bytes\{generation="3",worker="0"\}/);

    const surfaces = {
      control: (await get({ socketPath: baton.socketPath }, '/metrics')).body,
      listener: (await get({ port: metricsPort }, '/metrics')).body,
      proxyAdmin: (await get({ port: l.admin!.port }, '/stats/prometheus')).body,
    };
    for (const [where, text] of Object.entries(surfaces)) {
      const result = await promtool(text);
      expect(result, `${where}:\n${result.out}`).toEqual({ code: 0, out: '' });
      expect(text, where).not.toMatch(/writer="/);
      expect(text, where).toMatch(/^baton_cluster_upstream_rq_xx_total\{cluster_name="app",code_class="2xx"\} 10$/m);
      expect(text, where).toMatch(/^baton_http_downstream_rq_time_seconds_bucket\{listener="web",le="0.0005"\} \d+$/m);
      expect(text, where).toMatch(/^baton_crashes_total 1$/m);
      expect(text, where).toMatch(/^baton_reloads_ok_total 1$/m);
      // Registered at 0 from the start, not when the first failure happens.
      expect(text, where).toMatch(/^baton_reloads_failed_total 0$/m);
      expect(text, where).toMatch(/^baton_drain_kills_total 0$/m);
      expect(text, where).toMatch(/^baton_generation_start_time_seconds\{generation="3",worker="0"\} \d+(\.\d+)?$/m);
    }
    // The TCP listener is read-only: nothing else is served, nothing mutates.
    const post = await requestRaw(metricsPort, 'POST', '/metrics');
    expect(post).toMatchObject({ status: 405, allow: 'GET, HEAD' });
    for (const path of ['/reload', '/stop', '/status', '/stats']) expect((await requestRaw(metricsPort, 'POST', path)).status).toBe(404);
    expect((await baton.status()).generations.filter((g) => g.state === 'active').map((g) => g.generation)).toEqual([3]);
  });

  it('the TCP listener also serves the memory dashboard and its series, read-only', async () => {
    const metricsPort = await freePort();
    const baton = new BatonProcess(
      httpConfig(fixture('http-app.ts'), { listeners: [{ name: 'http', address: `127.0.0.1:${await freePort()}` }], metrics: { listen: `127.0.0.1:${metricsPort}` }, memory: { interval: '200ms' } }),
    );
    await baton.active(1);
    const page = await get({ port: metricsPort }, '/dashboard');
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<html/i);
    // The page's own script and the series it fetches (relative to /dashboard) come from here too.
    expect((await get({ port: metricsPort }, '/dashboard/app.js')).body).toMatch(/memory\/series/);
    await expect
      .poll(async () => (JSON.parse((await get({ port: metricsPort }, '/memory/series')).body) as { generations: { generation: number; points: unknown[] }[] }).generations[0]?.points.length ?? 0, { timeout: 10_000 })
      .toBeGreaterThan(0);
    expect((await get({ port: metricsPort }, '/memory/series?generation=x')).status).toBe(400);
    expect(await requestRaw(metricsPort, 'POST', '/memory/series')).toMatchObject({ status: 405, allow: 'GET, HEAD' });
    for (const path of ['/memory/release', '/heap-snapshot', '/memory', '/status', '/events']) expect((await requestRaw(metricsPort, 'GET', path)).status).toBe(404);
  });

  it.runIf(hasPromtool)('labels each worker of a generation apart (workers: 2), and promtool still passes', async () => {
    const metricsPort = await freePort();
    const baton = new BatonProcess(
      httpConfig(fixture('http-app.ts'), { workers: 2, listeners: [{ name: 'http', address: `127.0.0.1:${await freePort()}` }], metrics: { listen: `127.0.0.1:${metricsPort}` }, memory: { interval: '200ms' } }),
    );
    await baton.active(1);
    const both = /baton_memory_rss_bytes\{generation="1",worker="0"\} [1-9][\s\S]*baton_memory_rss_bytes\{generation="1",worker="1"\} [1-9]/;
    await expect.poll(async () => (await get({ port: metricsPort }, '/metrics')).body, { timeout: 10_000 }).toMatch(both);
    const text = (await get({ port: metricsPort }, '/metrics')).body;
    expect(text).toMatch(/^baton_generation_start_time_seconds\{generation="1",worker="1"\} /m);
    const result = await promtool(text);
    expect(result, result.out).toEqual({ code: 0, out: '' });
  });

  it('metrics.listen: loopback unless metrics.allow-remote, TCP only, off by default', () => {
    const base = { command: ['node', 'app.js'] };
    expect(validateConfig(base, 'test', '/').metrics).toBeUndefined();
    expect(validateConfig({ ...base, metrics: { listen: '127.0.0.1:9464' } }, 'test', '/').metrics).toEqual({ listen: { kind: 'tcp', host: '127.0.0.1', port: 9464 } });
    expect(() => validateConfig({ ...base, metrics: { listen: '0.0.0.0:9464' } }, 'test', '/')).toThrow(
      /metrics\.listen: '0\.0\.0\.0:9464' is not a loopback address: set metrics\.allow-remote: true/,
    );
    expect(validateConfig({ ...base, metrics: { listen: '0.0.0.0:9464', 'allow-remote': true } }, 'test', '/').metrics?.listen.host).toBe('0.0.0.0');
    expect(() => validateConfig({ ...base, metrics: { listen: 'unix:/tmp/m.sock' } }, 'test', '/')).toThrow(/metrics\.listen: .* is a Unix socket/);
    expect(() => validateConfig({ ...base, metrics: { listen: 'nowhere' } }, 'test', '/')).toThrow(/metrics\.listen: invalid address 'nowhere'/);
  });
});
