// The leak watch on real processes, time scaled: a 1 s interval and a 40 s window (so the shortest
// span judged is 20 s instead of the default 90 s) and a 30 MiB/min V8 heap leak instead of
// 10 MiB/min (4 MiB of growth must fit into the shorter span). A leaking generation and a healthy
// one run side by side under the same load; the leak must be named within the 50 s both are
// watched (23–30 s on Node 22 and 24, idle or beside 8 busy loops; 39–41 s on Node 26), the
// healthy one never flagged over that time (warm-up included).
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

const app = fixture('memory-app.ts');
const memory = { interval: '1s', window: '40s' };

interface Flag {
  growing: boolean;
  finding?: string;
}

async function flag(baton: BatonProcess): Promise<Flag | undefined> {
  return ((await baton.status()).generations.find((g) => g.generation === 1) as { memory?: Flag }).memory;
}

describe('memory leak watch', () => {
  // Not retried: it failed under load while V8 ran no major GC in the window and the detector fitted
  // heap-used minima (live plus old-space garbage); the reporter's measuring GCs give it after-GC
  // values, and the finding must say it judged those.
  it('names a V8 heap leak within 50 s and never flags a healthy generation under the same load', { timeout: 90_000 }, async () => {
    const leaking = new BatonProcess(httpConfig(app, { env: { MEMORY_MODE: 'heap-leak', LEAK_KIB: '50' }, memory }));
    const healthy = new BatonProcess(httpConfig(app, { env: { MEMORY_MODE: 'healthy' }, memory }));
    await Promise.all([leaking.active(1), healthy.active(1)]);
    const started = Date.now();
    const loads = [startLoad({ port: await leaking.port() }, { keepAlive: 2, newConnection: 0 }), startLoad({ port: await healthy.port() }, { keepAlive: 2, newConnection: 0 })];
    let flaggedAt: number | undefined;
    let lastFinding = '';
    const healthyFindings: string[] = [];
    try {
      while (Date.now() - started < 50_000) {
        const [l, h] = await Promise.all([flag(leaking), flag(healthy)]);
        if (h?.growing) healthyFindings.push(h.finding ?? '');
        lastFinding = l?.finding ?? lastFinding;
        if (l?.growing && flaggedAt === undefined) {
          flaggedAt = Date.now() - started;
          console.log(`leak flagged after ${(flaggedAt / 1000).toFixed(1)} s: ${l.finding}; healthy: ${h?.finding}`);
          expect(l.finding).toMatch(/^growing: V8 heap after GC \+[\d.]+ MiB\/min/);
        }
        if (flaggedAt !== undefined && Date.now() - started > 50_000) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
    }
    expect(flaggedAt, `the leak was never flagged; its last finding: ${lastFinding}`).toBeDefined();
    expect(flaggedAt!).toBeLessThan(50_000);
    expect(healthyFindings).toEqual([]);
  });

  // The 10 % target (#16): an 80 MiB/s leak — at the 5 s interval alone it would overshoot by up
  // to 400 MiB, so this fails whenever the 250 ms statm watch between samples is not running (it
  // was not: the workers' summing probe dropped its rss read, and a missed sample cost 80–95 %).
  it('a fast leak is replaced within 10 % of the hard limit', { timeout: 120_000 }, async () => {
    const MiB = 1024 * 1024;
    const config = (mode: string) => httpConfig(app, { env: { MEMORY_MODE: mode, FAST_MIB: '8' }, memory: { interval: '5s', 'hard-limit': '400MiB' } });
    const baton = new BatonProcess(config('fast-leak'));
    await baton.active(1);
    baton.writeConfig(config('')); // not reloaded: the replacement runs the config in force, and leaks too
    const pid = (await baton.status()).generations[0]!.pid;
    let peak = 0;
    const watch = setInterval(() => {
      try {
        peak = Math.max(peak, Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096);
      } catch {
        clearInterval(watch);
      }
    }, 20);
    const over = await baton.waitForEvent('memory-limit', (e) => e.generation === 1 && e.limit === 'hard', 90_000);
    expect(over).toMatchObject({ figure: 'rss', limitBytes: 400 * MiB });
    const seen = Math.round((over.bytes / MiB) * 100) / 100;
    console.log(`fast leak (80 MiB/s) caught at RSS ${seen} MiB against a 400 MiB hard limit: ${(((seen - 400) / 400) * 100).toFixed(1)} % over`);
    await baton.waitForEvent('memory-replaced', (e) => e.generation === 1 && e.replacement === 2, 60_000);
    clearInterval(watch);
    // Until the replacement is ready the bloated generation serves on and keeps leaking: reported, not bounded here.
    console.log(`peak RSS of generation 1 before it was replaced: ${(peak / MiB).toFixed(0)} MiB`);
    // In bytes: a catch a few KiB over the limit rounds to 400.00 MiB.
    expect(over.bytes).toBeGreaterThan(400 * MiB);
    expect(over.bytes).toBeLessThanOrEqual(440 * MiB);
  });
});
