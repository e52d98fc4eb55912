import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, expectAllAnswered, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

describe('reload under load', () => {
  it('30 reloads with keep-alive and new-connection clients: no failed, refused or reset request', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const port = await baton.port();
    const load = startLoad({ port }, { keepAlive: 4, newConnection: 4 });
    await load.progress(5);
    for (let i = 0; i < 30; i++) {
      const reply = await baton.reload();
      expect(reply.body, JSON.stringify(reply.body)).toMatchObject({ ok: true, generation: i + 2 });
      await load.progress(2);
    }
    const counts = await load.stop();
    console.log(`reload under load: 30 reloads, ${describeCounts(counts)}`);
    expectAllAnswered(counts);
    // Every generation answered: the traffic really moved across the reloads.
    const generations = new Set(counts.bodies.map((b) => b.split(' ')[1]));
    expect(generations.size).toBeGreaterThanOrEqual(25);
    const status = await baton.status();
    expect(status.active).toBe(31);
  });
});
