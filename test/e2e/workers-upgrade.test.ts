import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig, waitForGone } from '../helpers/baton.ts';
import { describeCounts, expectAllAnswered, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

describe('baton upgrade with workers', () => {
  it('hands every per-worker reuseport socket to the successor: no failed request, both workers serve after', async () => {
    const baton = new BatonProcess(httpConfig(fixture('workers-app.ts'), { workers: 2 }));
    await baton.active(1);
    const port = await baton.port();
    const before = await baton.status();
    expect(before.listeners).toHaveLength(2);
    const load = startLoad({ port }, { keepAlive: 2, newConnection: 4 });
    await load.progress(5);
    const result = await baton.cli('upgrade');
    expect(result.exitCode, String(result.stderr)).toBe(0);
    // Its own end, after the hand-over: it holds no control socket then, so its log is its only word.
    await baton.waitForLog((l) => l.pid === baton.pid && l.event === 'stopped' && l.handedOver === true);
    expect(await waitForGone([baton.pid], 15_000)).toEqual([]);
    const after = await baton.status();
    // Both sockets came from the predecessor: none was rebound (a rebound one would leave the old one's queue to die with it).
    expect(after.listeners.map((l) => l.from)).toEqual(['predecessor', 'predecessor']);
    const pids = after.generations.find((g) => g.generation === after.active)?.workers?.map((w) => w.pid) ?? [];
    expect(pids).toHaveLength(2);
    const deadline = Date.now() + 15_000;
    while (pids.some((p) => !load.counts.bodies.some((b) => b.includes(`pid ${p} `))) && Date.now() < deadline) await load.progress(1);
    const counts = await load.stop();
    console.log(`workers upgrade under load: ${describeCounts(counts)}`);
    expectAllAnswered(counts);
    for (const p of pids) expect(counts.bodies.some((b) => b.includes(`pid ${p} `)), `worker ${p} never answered`).toBe(true);
  }, 120_000);
});
