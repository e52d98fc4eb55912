import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

afterEach(cleanupAll);

/** A request the app answers after a minute, on its own connection: resolves 'completed' or 'cut'. */
function holdRequest(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/slow?ms=60000', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve('completed'));
      res.on('error', () => resolve('cut'));
    });
    req.on('error', () => resolve('cut'));
  });
}

describe('max-draining', () => {
  it('ten reloads while each generation holds a long request: never more than max-draining drain unhurried, the hurried die at their shutdown timeout, and the log counts what that cut', async () => {
    const maxDraining = 2;
    const baton = new BatonProcess(
      httpConfig(fixture('canary-app.ts'), { 'max-draining': maxDraining, 'drain-timeout': '60s', 'shutdown-timeout': '1s' }),
    );
    await baton.active(1);
    const port = await baton.port();
    let sampling = true;
    let most = 0;
    let mostAlive = 0;
    const sampler = (async () => {
      while (sampling) {
        const s = await baton.status();
        const draining = s.generations.filter((g) => g.state === 'draining').map((g) => g.generation);
        const hurried = new Set(s.hurried ?? []);
        most = Math.max(most, draining.filter((g) => !hurried.has(g)).length);
        mostAlive = Math.max(mostAlive, draining.length);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const held: Promise<string>[] = [];
    for (let i = 1; i <= 10; i++) {
      held.push(holdRequest(port));
      // The long request reached generation i (the only one accepting) before the reload.
      await expect.poll(async () => (await baton.status()).generations.find((g) => g.generation === i)?.connections, { timeout: 10_000 }).toBe(1);
      const r = await baton.reload();
      expect(r.body.ok, JSON.stringify(r.body)).toBe(true);
    }
    await expect.poll(async () => (await baton.status()).generations.filter((g) => g.state === 'draining').length, { timeout: 10_000 }).toBe(maxDraining);
    sampling = false;
    await sampler;
    expect(most).toBeLessThanOrEqual(maxDraining);
    // Hurried generations live on for their shutdown timeout (checked below), so the total may exceed the bound meanwhile.
    // Generations 1…10 drained; the last max-draining still do, the others were hurried.
    const hurries = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((n) => baton.waitForEvent('drain-hurried', (e) => e.generation === n, 10_000)));
    expect(baton.events.filter((e) => e.type === 'drain-hurried').map((e) => e.generation)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const h of hurries) {
      expect(h).toMatchObject({ cut: 1, why: `more than ${maxDraining} generations would drain` });
      const exit = await baton.waitForEvent('worker-state', (e) => e.generation === h.generation && e.to === 'exited');
      expect(exit).toMatchObject({ from: 'draining', signal: 'SIGKILL' });
      expect(exit.time - h.time).toBeLessThan(1_000 + 1_500);
    }
    const outcomes = await Promise.all(held.slice(0, 8));
    expect(outcomes).toEqual(new Array(8).fill('cut'));
    console.log(`max-draining ${maxDraining}: at most ${most} unhurried and ${mostAlive} in all draining at once over 10 reloads; ${hurries.length} hurried, 1 connection cut each`);
  });
});
