import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

/** One request on a fresh connection; resolves with the answering pid. */
function pidOf(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve(Number(/pid (\d+)/.exec(body)?.[1])));
    });
    req.on('error', reject);
  });
}

describe('balance: reuseport', () => {
  it('8 workers, a connection per request: no worker gets more than twice its fair share', async () => {
    const workers = 8;
    const baton = new BatonProcess(httpConfig(fixture('workers-app.ts'), { workers, balance: 'reuseport', 'ready-timeout': '60s' }));
    await baton.active(1);
    const port = await baton.port();
    const pids = (await baton.status()).generations[0]?.workers?.map((w) => w.pid) ?? [];
    expect(pids).toHaveLength(workers);
    const served = new Map<number, number>(pids.map((p) => [p, 0]));
    const total = 1600;
    const concurrency = 8;
    let sent = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (sent < total) {
          sent += 1;
          const pid = await pidOf(port);
          served.set(pid, (served.get(pid) ?? 0) + 1);
        }
      }),
    );
    const fair = total / workers;
    const distribution = pids.map((p) => served.get(p) ?? 0);
    console.log(`reuseport, ${workers} workers, ${total} connections: ${distribution.join(' ')} (fair share ${fair})`);
    expect([...served.keys()].sort()).toEqual([...pids].sort());
    for (const n of distribution) expect(n).toBeLessThanOrEqual(2 * fair);
  });
});

describe('a worker killed under load', () => {
  it('SIGKILL of one worker: no connection refused, only its slot restarts, the others keep their pids', async () => {
    const baton = new BatonProcess(httpConfig(fixture('workers-app.ts'), { workers: 3 }));
    await baton.active(1);
    const port = await baton.port();
    const before = (await baton.status()).generations[0]?.workers?.map((w) => w.pid) ?? [];
    const load = startLoad({ port }, { keepAlive: 0, newConnection: 6 });
    await load.progress(5);
    const victim = before[1] as number;
    process.kill(victim, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    let after = before;
    while (Date.now() < deadline) {
      await load.progress(1);
      const g = (await baton.status()).generations.find((x) => x.generation === 1);
      after = g?.workers?.map((w) => w.pid) ?? [];
      if (after[1] !== victim && g?.workers?.[1]?.state === 'active') break;
    }
    await load.progress(10);
    const counts = await load.stop();
    console.log(`worker SIGKILL under load: ${describeCounts(counts)}`);
    const status = await baton.status();
    expect(status.active).toBe(1);
    expect(status.generations).toHaveLength(1);
    expect(after[0]).toBe(before[0]);
    expect(after[2]).toBe(before[2]);
    expect(after[1]).not.toBe(victim);
    expect(alive(after[1] as number)).toBe(true);
    expect(counts.refused, describeCounts(counts)).toBe(0);
    expect(counts.ok).toBeGreaterThan(0);
    // The restarted worker serves: its pid answers.
    expect(counts.bodies.some((b) => b.includes(`pid ${after[1]} `))).toBe(true);
  });
});
