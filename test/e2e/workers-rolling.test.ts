import { afterEach, describe, expect, it } from 'vitest';
import type { StatusSnapshot } from '../../supervisor/core/supervisor.ts';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, expectAllAnswered, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

/** Worker processes the supervisor has not seen exit, across generations (at least as many as are really alive). */
function alive(s: StatusSnapshot): number {
  return s.generations.reduce((n, g) => n + (g.workers ?? []).filter((w) => w.state !== 'exited').length, 0);
}

describe('rollout: rolling', () => {
  it('max-surge 1 under load: never more than workers + 1 processes alive, no failed request', async () => {
    const workers = 3;
    const config = httpConfig(fixture('workers-app.ts'), { workers, rollout: 'rolling', 'max-surge': 1 });
    const baton = new BatonProcess(config);
    await baton.active(1);
    const port = await baton.port();
    const load = startLoad({ port }, { keepAlive: 3, newConnection: 3 });
    await load.progress(3);
    let most = 0;
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, alive(await baton.status()));
        samples += 1;
      }
    })();
    for (let i = 0; i < 3; i++) {
      const reply = await baton.reload();
      expect(reply.body, JSON.stringify(reply.body)).toMatchObject({ ok: true, generation: i + 2 });
    }
    await load.progress(3);
    sampling = false;
    await sampler;
    const counts = await load.stop();
    console.log(`rolling, ${workers} workers, max-surge 1: 3 reloads, at most ${most} processes alive over ${samples} samples; ${describeCounts(counts)}`);
    expect(samples).toBeGreaterThan(20);
    expect(most).toBeLessThanOrEqual(workers + 1);
    expect(most).toBeGreaterThan(workers);
    expectAllAnswered(counts);
    const status = await baton.status();
    expect(status.active).toBe(4);
    expect(status.generations.find((g) => g.generation === 4)?.workers?.map((w) => w.state)).toEqual(Array(workers).fill('active'));
  });

  it('a bad release fails at slot 1: the reload fails and slot 0 is rolled back to the old generation', async () => {
    const baton = new BatonProcess(httpConfig(fixture('workers-app.ts'), { workers: 2, rollout: 'rolling', 'max-surge': 1 }));
    await baton.active(1);
    const before = (await baton.status()).generations[0]?.workers?.map((w) => w.pid) ?? [];
    baton.writeConfig(httpConfig(fixture('workers-app.ts'), { workers: 2, rollout: 'rolling', 'max-surge': 1, env: { FAIL_WORKER: '1' } }));
    const reply = await baton.reload();
    expect(reply.body.ok).toBe(false);
    expect(reply.body.error?.message).toMatch(/generation 2 worker 1 .*exited with code 3 before it was ready/s);
    const status = await baton.status();
    expect(status.active).toBe(1);
    const g1 = status.generations.find((g) => g.generation === 1);
    const g2 = status.generations.find((g) => g.generation === 2);
    // Slot 0 had moved to generation 2 and came back to generation 1 in a new process; slot 1 never moved.
    expect(g1?.workers?.map((w) => w.state)).toEqual(['active', 'active']);
    expect(g1?.workers?.[0]?.pid).not.toBe(before[0]);
    expect(g1?.workers?.[1]?.pid).toBe(before[1]);
    expect(g2?.state).toMatch(/draining|exited/);
    const port = await baton.port();
    const load = startLoad({ port }, { keepAlive: 0, newConnection: 4 });
    await load.progress(20);
    const counts = await load.stop();
    expectAllAnswered(counts);
    expect(counts.bodies.every((b) => b.startsWith('generation 1 '))).toBe(true);
  });
});
