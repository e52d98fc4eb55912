import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

afterEach(cleanupAll);

/** One request on a new connection: the generation that accepted it. */
function whoAnswers(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(Number(/^generation (\d+)/.exec(body)?.[1])));
      })
      .on('error', reject);
  });
}

describe('warmup', () => {
  it('the new generation shares the held socket with the old one for the warm-up, then the old one drains', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { warmup: '5s' }));
    await baton.active(1);
    const port = await baton.port();
    const reload = baton.reload();
    const warming = await baton.waitForEvent('warming', (e) => e.generation === 2);
    expect(warming).toMatchObject({ beside: [1], warmupMs: 5_000 });
    // During the warm-up new connections reach both generations (the kernel hands each to whichever accepts first).
    const seen = new Set<number>();
    const until = warming.time + 3_500;
    while (Date.now() < until && seen.size < 2) seen.add(await whoAnswers(port));
    expect(seen).toEqual(new Set([1, 2]));
    expect((await baton.status()).generations.map((g) => `${g.generation}:${g.state}`)).toEqual(['1:active', '2:ready']);
    expect((await reload).body).toMatchObject({ ok: true, generation: 2 });
    const draining = await baton.waitForEvent('worker-state', (e) => e.generation === 1 && e.to === 'draining');
    // Drained only once the warm-up is over.
    expect(draining.time - warming.time).toBeGreaterThanOrEqual(5_000);
    await baton.workerState(1, 'exited');
    for (let i = 0; i < 5; i++) expect(await whoAnswers(port)).toBe(2);
  });
});
