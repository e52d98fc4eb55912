// 60 reloads of the SDK test app with a small stats segment: the request stats each generation
// labels with its number are retired once it has exited, so the segment files and the room used
// in them stop growing, /metrics keeps no series of gone generations, and the live one counts
// right. A worker restarted within a generation keeps that generation's stats.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openSegment, type TableUsage } from '../../shared/stats/index.ts';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { get } from '../helpers/ports.ts';

afterEach(cleanupAll);

/** The instance's segment files, and the room used in them (read-only mapping, as `baton stats` does). */
function segmentUsage(baton: BatonProcess): { files: string[]; usage: TableUsage } {
  const files = fs.readdirSync(baton.statsDir).sort();
  const instance = /^baton-\d+-(.+)\.0$/.exec(files[0] ?? '')?.[1];
  if (!instance) throw new Error(`no segment 0 in ${baton.statsDir}: ${files.join(', ')}`);
  return { files, usage: openSegment({ dir: baton.statsDir, instance }).usage() };
}

/** generation → summed value of each `baton_http_requests_total` series of /metrics. */
async function requestSeries(baton: BatonProcess): Promise<Map<string, number>> {
  const text = (await get({ socketPath: baton.socketPath }, '/metrics')).body;
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^baton_http_requests_total\{([^}]*)\} (\S+)$/gm)) {
    const generation = /generation="(\d+)"/.exec(m[1]!)?.[1] ?? '?';
    out.set(generation, (out.get(generation) ?? 0) + Number(m[2]));
  }
  return out;
}

async function settled(baton: BatonProcess): Promise<number> {
  await expect.poll(async () => (await baton.status()).generations.filter((g) => g.state !== 'exited').length, { timeout: 20_000 }).toBe(1);
  return (await baton.status()).generations.find((g) => g.state === 'active')!.generation;
}

describe('stats of gone generations', () => {
  it('60 reloads: segment files and used room stay flat, /metrics has only the live generation, whose counts are right', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { 'drain-timeout': '5s', stats: { 'stats-per-segment': 128 } }));
    await baton.active(1);
    const port = await baton.port();
    /** Requests answered by each generation, as its replies say. */
    const answered = new Map<string, number>();
    const requests = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const reply = await get({ port }, '/');
        expect(reply.status).toBe(200);
        const generation = /^generation (\d+) /.exec(reply.body)![1]!;
        answered.set(generation, (answered.get(generation) ?? 0) + 1);
      }
    };
    const reloads = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        expect((await baton.reload()).body.ok).toBe(true);
        await requests(3);
        // The room ever taken is sized for the generations whose stats are live at once: two at
        // every reload here (the old one's retired before the next), as in the first ten, or a
        // slow drain that let three overlap would take a third generation's room once and fail
        // the comparison (it did once, in a CI trial on Node 26: one generation's 6 entries more).
        const now = await settled(baton);
        await expect.poll(async () => [...(await requestSeries(baton)).keys()], { timeout: 10_000 }).toEqual([String(now)]);
      }
    };
    await requests(3);
    // To generation 11: past the key growing by a digit, and the memory gauges of both writer slots registered.
    await reloads(10);
    let live = await settled(baton);
    await expect.poll(async () => [...(await requestSeries(baton)).keys()], { timeout: 10_000 }).toEqual([String(live)]);
    const before = segmentUsage(baton);

    await reloads(50);
    live = await settled(baton);
    expect(live).toBe(61);
    await requests(4);
    // Generation 60's stats go once its last process has been reaped.
    await expect.poll(async () => [...(await requestSeries(baton)).keys()], { timeout: 10_000 }).toEqual(['61']);
    const after = segmentUsage(baton);
    console.log(`60 reloads: ${before.files.length} → ${after.files.length} segment files, usage ${JSON.stringify(before.usage)} → ${JSON.stringify(after.usage)}`);
    expect(after.files).toEqual(before.files);
    expect({ ...after.usage, arenaBytes: 0 }).toEqual({ ...before.usage, arenaBytes: 0 });
    expect(after.usage.arenaBytes).toBe(before.usage.arenaBytes);
    // The live generation's counts are exactly the requests it answered (7); the unlabelled total is all of them.
    expect(answered.get('61')).toBe(7);
    // Counted when the response finishes in the child, which can be just after the client has read it.
    await expect.poll(async () => (await requestSeries(baton)).get('61'), { timeout: 5_000 }).toBe(7);
    const total = [...answered.values()].reduce((a, b) => a + b, 0);
    const text = (await get({ socketPath: baton.socketPath }, '/metrics')).body;
    expect(Number(/^app_requests_total (\S+)$/m.exec(text)?.[1])).toBe(total);
    expect(Number(/^baton_reloads_ok_total (\S+)$/m.exec(text)?.[1])).toBe(60);
  }, 300_000);

  it('a worker restarted within its generation keeps the generation’s stats', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { workers: 2, restart: { 'backoff-initial': '10ms' } }));
    await baton.active(1);
    const port = await baton.port();
    for (let i = 0; i < 20; i++) expect((await get({ port }, '/')).status).toBe(200);
    await expect.poll(async () => (await requestSeries(baton)).get('1'), { timeout: 10_000 }).toBe(20);
    const generation = (await baton.status()).generations[0]!;
    const victim = generation.workers?.[0]?.pid ?? generation.pid;
    process.kill(victim, 'SIGKILL');
    await baton.waitForEvent('worker-state', (e) => e.generation === 1 && e.to === 'exited');
    await expect.poll(async () => (await baton.status()).generations[0]!.workers?.every((w) => w.pid !== victim && w.state === 'active'), { timeout: 20_000 }).toBe(true);
    for (let i = 0; i < 5; i++) expect((await get({ port }, '/')).status).toBe(200);
    // The SIGKILLed worker's counts stay, the restarted one adds to the same series.
    await expect.poll(async () => (await requestSeries(baton)).get('1'), { timeout: 10_000 }).toBe(25);
  }, 120_000);
});
