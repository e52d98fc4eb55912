// An app that keeps its prom-client registry, bridged to Baton's segment: its counter and
// histogram read the same after three reloads as the number of requests sent across them.
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { get } from '../helpers/ports.ts';

afterEach(cleanupAll);

/** The value of the series `series` (name and labels as written) in Prometheus text, or undefined. */
function valueIn(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('prom-client bridge', () => {
  it('a prom-client counter incremented N times across 3 reloads reads N, and its histogram counts N', async () => {
    const baton = new BatonProcess(httpConfig(fixture('prom-client-app.ts')));
    await baton.active(1);
    const port = await baton.port();
    const perGeneration = 25;
    for (let g = 1; g <= 4; g++) {
      for (let i = 0; i < perGeneration; i++) expect((await get({ port }, '/hit')).status).toBe(200);
      if (g < 4) expect((await baton.reload()).body.ok).toBe(true);
    }
    const n = 4 * perGeneration;
    await expect.poll(async () => valueIn((await get({ port }, '/metrics')).body, 'app_hits_total{route="hit"}'), { timeout: 10_000 }).toBe(n);
    const text = (await get({ port }, '/metrics')).body;
    expect(valueIn(text, 'app_hit_seconds_count')).toBe(n);
    expect(valueIn(text, 'app_hit_seconds_bucket{le="0.01"}')).toBe(n);
    expect(valueIn(text, 'app_hit_seconds_bucket{le="0.001"}')).toBe(0);
    expect(valueIn(text, 'app_hit_seconds_sum')).toBeCloseTo(n * 0.005, 9);
    expect(text).toContain('# HELP app_hits_total Hits the app answered.');
    // Gauges stay per process: the serving generation's own.
    expect(valueIn(text, 'app_up')).toBe(1);
    // The supervisor's /metrics sees the same totals in the segment.
    const supervisor = await get({ socketPath: baton.socketPath }, '/metrics');
    expect(valueIn(supervisor.body, 'app_hits_total{route="hit"}')).toBe(n);
  });

  for (const then of ['exit', 'kill'] as const) {
    it(`counts made right before a crash (${then === 'exit' ? 'process.exit' : 'SIGKILL'}) are all in the supervisor's /metrics`, async () => {
      const baton = new BatonProcess(httpConfig(fixture('prom-client-app.ts'), { restart: { 'backoff-initial': '10ms' } }));
      await baton.active(1);
      const port = await baton.port();
      const n = 1000;
      // The generation counts n, then dies before it answers: the request fails.
      await expect(get({ port }, `/burst?n=${n}&then=${then}`)).rejects.toThrow();
      await baton.active(2);
      const supervisor = (await get({ socketPath: baton.socketPath }, '/metrics')).body;
      expect(valueIn(supervisor, 'app_hits_total{route="burst"}')).toBe(n);
      expect(valueIn(supervisor, 'app_hit_seconds_count')).toBe(n);
      expect(valueIn(supervisor, 'app_hit_seconds_bucket{le="0.1"}')).toBe(n);
      expect(supervisor).toMatch(/^baton_crashes_total 1$/m);
    });
  }
});
