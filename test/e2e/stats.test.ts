import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { LAYOUT_VERSION, type StatSample } from '../../shared/stats/index.ts';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS, ROOT } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

async function value(baton: BatonProcess, name: string): Promise<number> {
  const reply = await controlRequest(baton.socketPath, 'GET', `/stats?filter=${encodeURIComponent(`^${name}$`)}`);
  const sample = (reply.body as { stats: StatSample[] }).stats[0];
  return sample && sample.kind !== 'histogram' ? sample.value : 0;
}

describe('shared-memory stats', () => {
  it('a counter keeps counting across 20 reloads under load, never decreasing, and ends exact', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const port = await baton.port();
    const load = startLoad({ port }, { keepAlive: 2, newConnection: 2 });
    let last = 0;
    for (let i = 0; i < 20; i++) {
      expect((await baton.reload()).body.ok).toBe(true);
      await load.progress(2);
      const now = await value(baton, 'app.requests');
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    }
    const counts = await load.stop();
    expect(counts.ok, describeCounts(counts)).toBe(counts.requests);
    // Every request answered was counted once, by whichever generation served it.
    await expect.poll(() => value(baton, 'app.requests')).toBe(counts.ok);
    expect(await value(baton, 'baton.reloads_ok')).toBe(20);
    expect(await value(baton, 'baton.generations_started')).toBe(21);
    // The last generation replaced is still draining, and live, for a moment: its gauge counts until it is reaped.
    await expect.poll(() => value(baton, 'app.up')).toBe(1);
  });

  it('a gauge drops the contribution of a SIGKILLed generation once it is reaped', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { restart: { 'backoff-initial': '10ms' } }));
    await baton.active(1);
    expect(await value(baton, 'app.up')).toBe(1);
    const victim = (await baton.status()).generations[0]!;
    process.kill(victim.pid, 'SIGKILL');
    await baton.active(2);
    await baton.waitForEvent('worker-state', (e) => e.generation === 1 && e.from === 'active' && e.to === 'exited');
    expect(await value(baton, 'app.up')).toBe(1);
    expect(await value(baton, 'baton.crashes')).toBe(1);
  });

  it('/metrics is valid Prometheus text exposition', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const reply = await fetchText(baton, '/metrics');
    const parser = 'parse-prometheus-text-format';
    const { default: parse } = (await import(parser)) as { default: (t: string) => { name: string; type: string; metrics: { value?: string }[] }[] };
    const families = parse(reply);
    const byName = new Map(families.map((f) => [f.name, f]));
    expect(byName.get('baton_generations_started_total')?.type).toBe('COUNTER');
    expect(byName.get('baton_generations_live')?.type).toBe('GAUGE');
    expect(byName.get('baton_generations_live')?.metrics[0]?.value).toBe('1');
  });

  it('baton stats reads the segment even when the supervisor does not answer', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    process.kill(baton.pid, 'SIGSTOP');
    try {
      const out = await baton.cli('stats', '--name', 'test', '--json');
      expect(out.exitCode, out.stderr).toBe(0);
      const read = JSON.parse(out.stdout) as { stats: StatSample[]; generations: { generation: number; pid: number; state: string }[] };
      expect(read.stats.find((s) => s.name === 'baton.generations_live')).toMatchObject({ value: 1 });
      // Seen before the SIGSTOP: the stopped supervisor sends nothing now.
      const active = (await baton.workerState(1, 'active')).pid;
      expect(read.generations).toEqual([expect.objectContaining({ generation: 1, pid: active, state: 'active' })]);
      const prom = await baton.cli('stats', '--name', 'test', '--prometheus', '--filter', '^baton\\.generations');
      expect(prom.stdout).toContain('# TYPE baton_generations_started_total counter');
      expect(prom.stdout).not.toContain('app_requests');
    } finally {
      process.kill(baton.pid, 'SIGCONT');
    }
  });

  it('a second supervisor of the same name refuses to start; a stale segment is re-initialised', async () => {
    const first = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await first.active(1);
    const other = path.join(first.dir, 'other.sock');
    const env = { BATON_STATS_DIR: first.statsDir, BATON_RUNTIME_DIR: path.join(first.dir, 'run2') };
    const second = await execa(process.execPath, [...NODE_FLAGS, BIN, 'run', '--name', 'test', '--control-socket', other, '--', ...fixture('http-app.ts')], { reject: false, env });
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain('stats: instance "test" already owns segment');
    expect(second.stderr).toContain(`owner pid ${first.pid} is alive`);

    first.proc.kill('SIGKILL');
    await first.exited;
    const files = fs.readdirSync(first.statsDir);
    expect(files.length).toBeGreaterThan(0);
    const again = new BatonProcess(httpConfig(fixture('http-app.ts')), [], { BATON_STATS_DIR: first.statsDir });
    await again.active(1);
    await again.waitForEvent('stats', (e) => e.state === 'reinitialised');
    expect((await controlRequest(again.socketPath, 'GET', '/status')).status).toBe(200);
  });

  it('a release with another stats layout is refused at reload; the old generation keeps serving', async () => {
    const good = httpConfig(fixture('http-app.ts'));
    const baton = new BatonProcess(good);
    await baton.active(1);
    const release = newLayoutRelease(baton.dir);
    baton.writeConfig({ ...good, command: [process.execPath, ...NODE_FLAGS, path.join(release, 'test/fixtures/http-app.ts')] });
    const reply = await baton.reload();
    expect(reply.body.ok).toBe(false);
    expect(reply.body.error?.code).toBe('ERR_RELOAD_FAILED');
    expect(reply.body.error?.message).toContain(`writes stats layout version 99 but this supervisor's segment is version ${LAYOUT_VERSION}`);
    expect(reply.body.error?.message).toContain('generation 1 keeps serving');
    expect((await baton.status()).active).toBe(1);
  });

  it('a change of stats capacities needs --cold, which restarts stats without refusing a connection', async () => {
    const good = httpConfig(fixture('http-app.ts'));
    const baton = new BatonProcess(good);
    await baton.active(1);
    const port = await baton.port();
    const load = startLoad({ port }, { keepAlive: 2, newConnection: 2 });
    await load.progress(20);
    const before = await value(baton, 'app.requests');

    baton.writeConfig({ ...good, stats: { writers: 8 } });
    const hot = await baton.reload();
    expect(hot.body.ok).toBe(false);
    expect(hot.body.error?.message).toContain(`the stats layout changes from baton.${LAYOUT_VERSION}.w16.`);
    expect(hot.body.error?.message).toContain(`to baton.${LAYOUT_VERSION}.w8.`);
    expect(hot.body.error?.message).toContain('use baton reload --cold');

    const cold = await baton.cli('reload', '--cold');
    expect(cold.exitCode, cold.stderr).toBe(0);
    await baton.waitForEvent('stats', (e) => e.state === 'reset');
    await load.progress(5);
    const counts = await load.stop();
    expect(counts.refused + counts.reset + counts.other + counts.non200, describeCounts(counts)).toBe(0);
    // Restarted from zero: the new segment holds only what generation 2 served, and none of the
    // `before` requests generation 1 had counted; the supervisor's own counts start over too.
    expect(await value(baton, 'app.requests')).toBeLessThanOrEqual(counts.ok - before);
    expect(await value(baton, 'baton.generations_started')).toBe(1);
    const out = await baton.cli('stats', '--name', 'test', '--json');
    expect(out.exitCode, out.stderr).toBe(0);
  });
});

function fetchText(baton: BatonProcess, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    import('node:http').then(({ default: http }) => {
      http.get({ socketPath: baton.socketPath, path: urlPath }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    }, reject);
  });
}

/** A copy of the SDK as a new release would ship it, with the stats layout version changed. */
function newLayoutRelease(dir: string): string {
  const release = path.join(dir, 'release-2');
  for (const part of ['child', 'shared', 'test/fixtures', 'binding.gyp', 'package.json']) {
    fs.cpSync(path.join(ROOT, part), path.join(release, part), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'build'), path.join(release, 'build'));
  const layout = path.join(release, 'shared/stats/layout.ts');
  fs.writeFileSync(layout, fs.readFileSync(layout, 'utf8').replace(/LAYOUT_VERSION = \d+;/, 'LAYOUT_VERSION = 99;'));
  return release;
}
