import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import type { StatSample } from '../../shared/stats/index.ts';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { describeCounts, expectAllAnswered, startLoad, type Load } from '../helpers/load.ts';

afterEach(cleanupAll);

/** Polls until every pid has answered at least once (new-connection clients reach every worker). */
async function everyPidServed(load: Load, pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const missing = (): number[] => pids.filter((pid) => !load.counts.bodies.some((b) => b.includes(`pid ${pid} `)));
  while (missing().length > 0 && Date.now() < deadline) await load.progress(1);
  return missing();
}

describe.each([2, 4])('workers: %i', (workers) => {
  it('reloads under load with keep-alive and new-connection clients: no failed request, every new worker serves', async () => {
    const baton = new BatonProcess(httpConfig(fixture('workers-app.ts'), { workers }));
    await baton.active(1);
    const port = await baton.port();
    const first = await baton.status();
    expect(first.generations[0]?.workers?.map((w) => w.state)).toEqual(Array(workers).fill('active'));
    const load = startLoad({ port }, { keepAlive: 4, newConnection: 4 });
    await load.progress(5);
    const reloads = 6;
    for (let i = 0; i < reloads; i++) {
      const reply = await baton.reload();
      expect(reply.body, JSON.stringify(reply.body)).toMatchObject({ ok: true, generation: i + 2 });
      const status = await baton.status();
      const active = status.generations.find((g) => g.generation === i + 2);
      const pids = active?.workers?.map((w) => w.pid) ?? [];
      expect(pids).toHaveLength(workers);
      expect(await everyPidServed(load, pids, 15_000), `generation ${i + 2}: workers that never answered`).toEqual([]);
    }
    const counts = await load.stop();
    console.log(`workers ${workers}: ${reloads} reloads, ${describeCounts(counts)}, ${counts.bodies.length} distinct worker processes answered`);
    expectAllAnswered(counts);
    // One counter summed over every worker of every generation, retired ones included: it saw every request.
    const reply = await controlRequest(baton.socketPath, 'GET', `/stats?filter=${encodeURIComponent('^app\\.requests$')}`);
    const sample = (reply.body as { stats: StatSample[] }).stats[0];
    const served = sample && sample.kind !== 'histogram' ? sample.value : 0;
    expect(served).toBeGreaterThanOrEqual(counts.ok);
    expect(served).toBeLessThanOrEqual(counts.ok + 200);
    // Each generation's every worker answered: 1 + reloads generations of `workers` processes.
    expect(new Set(counts.bodies).size).toBe((1 + reloads) * workers);
  });
});

describe('a bad release with several workers', () => {
  it('fails the reload when one worker cannot start; the old generation serves on, all its workers untouched', async () => {
    const baton = new BatonProcess(httpConfig(fixture('workers-app.ts'), { workers: 2 }));
    await baton.active(1);
    const before = (await baton.status()).generations[0]?.workers?.map((w) => w.pid);
    baton.writeConfig(httpConfig(fixture('workers-app.ts'), { workers: 2, env: { FAIL_WORKER: '1' } }));
    const reply = await baton.reload();
    expect(reply.body.ok).toBe(false);
    expect(reply.body.error?.message).toMatch(/generation 2 worker 1 .*exited with code 3 before it was ready/s);
    expect(reply.body.error?.message).toContain('generation 1 keeps serving');
    const after = await baton.status();
    expect(after.active).toBe(1);
    const g1 = after.generations.find((g) => g.generation === 1);
    expect(g1?.workers?.map((w) => w.pid)).toEqual(before);
    expect(g1?.workers?.map((w) => w.state)).toEqual(['active', 'active']);
  });
});
