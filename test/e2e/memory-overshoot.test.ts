// Opt-in measurement (BATON_OVERSHOOT_RUNS=N): the RSS at which the hard limit was detected over N
// fresh supervisors, each an 80 MiB/s leak (FAST_MIB × 10 per second) against 400 MiB with a 5 s
// interval, printed as a distribution; every run must stay within the 10 % of #16. Run it with and
// without background CPU load to see the spread (docs/memory.md, "Limits that hold").
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

afterEach(cleanupAll);
const MiB = 1024 * 1024;
const RUNS = Number(process.env.BATON_OVERSHOOT_RUNS ?? 0);
const FAST = process.env.FAST_MIB ?? '8';

describe.skipIf(RUNS <= 0)('hard-limit overshoot', () => {
  it(`over ${RUNS} runs, a fast leak is met within 10 % of the limit`, { timeout: 60_000 + RUNS * 30_000 }, async () => {
    const seen: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const config = (mode: string) => httpConfig(fixture('memory-app.ts'), { env: { MEMORY_MODE: mode, FAST_MIB: FAST }, memory: { interval: '5s', 'hard-limit': '400MiB' } });
      const baton = new BatonProcess(config('fast-leak'));
      await baton.active(1);
      baton.writeConfig(config(''));
      const pid = (await baton.status()).generations[0]!.pid;
      let crossedAt = 0;
      const watch = setInterval(() => {
        try {
          if (!crossedAt && Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096 > 400 * MiB) crossedAt = Date.now();
        } catch {
          clearInterval(watch);
        }
      }, 5);
      const over = await baton.waitForEvent('memory-limit', (e) => e.generation === 1 && e.limit === 'hard', 90_000);
      clearInterval(watch);
      const mib = over.bytes / MiB;
      seen.push(mib);
      const lag = crossedAt ? `${Date.now() - crossedAt} ms after this test saw it cross` : 'before this test saw it cross';
      console.log(`run ${i + 1}: met at ${mib.toFixed(1)} MiB (${(((mib - 400) / 400) * 100).toFixed(1)} % over), the event ${lag}`);
      await cleanupAll();
    }
    const s = [...seen].sort((a, b) => a - b);
    const pct = (m: number): string => `${(((m - 400) / 400) * 100).toFixed(1)} %`;
    console.log(`${RUNS} runs at ${Number(FAST) * 10} MiB/s: min ${s[0]!.toFixed(1)}, median ${s[s.length >> 1]!.toFixed(1)}, max ${s.at(-1)!.toFixed(1)} MiB; overshoot median ${pct(s[s.length >> 1]!)}, max ${pct(s.at(-1)!)}`);
    expect(s.at(-1)!).toBeLessThanOrEqual(440);
  });
});
