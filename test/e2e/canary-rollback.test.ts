import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

const CANARY = { window: '3s', 'max-error-rate': '1%', 'max-p99-ratio': 2, 'min-requests': 100 };

function config(env: Record<string, string> = {}): Record<string, unknown> {
  return httpConfig(fixture('canary-app.ts'), { canary: CANARY, env });
}

/** The pid answering `/` on a fresh connection. */
async function servingPid(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
  return Number(/pid (\d+)/.exec(await res.text())?.[1]);
}

describe('canary window', () => {
  it('rolls back a release answering 500 to 20% of requests under load: only those 500s fail, and the old pid serves again', async () => {
    const baton = new BatonProcess(config());
    await baton.active(1);
    const port = await baton.port();
    const oldPid = (await baton.status()).generations[0]!.pid;
    const load = startLoad({ port }, { keepAlive: 4, newConnection: 4, maxMs: 60_000 });
    await load.progress(50);
    baton.writeConfig(config({ FAIL_RATE: '0.2' }));
    const started = Date.now();
    const cli = await baton.cli('reload', '--wait-canary');
    const tookMs = Date.now() - started;
    expect(cli.exitCode, cli.stderr).toBe(1);
    expect(cli.stderr).toMatch(/rolled back: 5xx \d+(\.\d)?% > 1% over \d+ requests \(generation 1 serves again\)/);
    await load.progress(50);
    const counts = await load.stop();
    // Every failure was one of the release's 500s: none refused, reset or otherwise lost.
    expect(counts.refused + counts.reset + counts.other, describeCounts(counts)).toBe(0);
    expect(counts.non200).toBeGreaterThan(0);
    expect(await servingPid(port)).toBe(oldPid);
    const rollback = await baton.waitForEvent('canary-rollback');
    expect(rollback).toMatchObject({ generation: 2, restored: 1, reason: expect.stringMatching(/^rolled back: 5xx/) });
    expect(rollback.errors / rollback.requests).toBeGreaterThan(0.15);
    // Within the window: the breach is seen as soon as min-requests have been answered.
    const opened = await baton.waitForEvent('canary-open');
    const windowMs = rollback.time - opened.time;
    expect(windowMs).toBeLessThan(3_000);
    await baton.workerState(2, 'exited');
    const status = await baton.status();
    expect(status.active).toBe(1);
    expect(status.generations.find((g) => g.generation === 1)).toMatchObject({ pid: oldPid, state: 'active' });
    // The 5xx answers the canary counted in the segment were failures the clients saw (it decided
    // before the last of them); once generation 2 has exited its stats are retired, like a gone
    // pod's series, while generation 1's, alive, show none.
    expect(rollback.errors).toBeGreaterThan(0);
    expect(rollback.errors).toBeLessThanOrEqual(counts.non200);
    const stats = (await baton.cli('stats', '--json', '--name', 'test')).stdout;
    const samples = (JSON.parse(stats) as { stats: { name: string; labels: Record<string, string>; value?: number }[] }).stats;
    const requests = samples.filter((x) => x.name === 'baton.http.requests');
    expect(requests.filter((x) => x.labels.generation === '2')).toEqual([]);
    expect(requests.filter((x) => x.labels.generation === '1').length).toBeGreaterThan(0);
    expect(requests.filter((x) => x.labels.generation === '1' && x.labels.code_class === '5xx').reduce((n, x) => n + (x.value ?? 0), 0)).toBe(0);
    expect(samples.find((x) => x.name === 'baton.reloads_rolled_back')?.value).toBe(1);
    console.log(`rolled back ${windowMs} ms into the window (${tookMs} ms after the CLI started): ${describeCounts(counts)}`);
  });

  it('promotes a healthy release after its window: the old generation drains only then', async () => {
    const baton = new BatonProcess(config());
    await baton.active(1);
    const port = await baton.port();
    const load = startLoad({ port }, { keepAlive: 4, newConnection: 4, maxMs: 60_000 });
    await load.progress(50);
    baton.writeConfig(config({ HEALTHY: '1' }));
    const reload = baton.cli('reload', '--wait-canary');
    // During the window the old generation is parked, not draining.
    await baton.waitForEvent('canary-open');
    expect((await baton.status()).generations.find((g) => g.generation === 1)?.state).toBe('active');
    expect((await baton.status()).canary).toMatchObject({ generation: 2, parked: [1] });
    const cli = await reload;
    expect(cli.exitCode, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/canary passed: 5xx 0%, p99 [\d.]+ms over \d+ requests/);
    await load.progress(20);
    const counts = await load.stop();
    expect(counts.requests - counts.ok, describeCounts(counts)).toBe(0);
    await baton.workerState(1, 'exited');
    expect(await servingPid(port)).toBe((await baton.status()).generations.find((g) => g.generation === 2)?.pid);
  });
});
