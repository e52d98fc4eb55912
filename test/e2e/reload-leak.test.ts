import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

afterEach(cleanupAll);

function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]);
}

describe('200 reloads', () => {
  it('return the supervisor to its starting descriptor count and memory', async () => {
    // A small old space makes V8 collect eagerly, so RSS follows live memory rather than the
    // collector's timing; a real leak still grows it (and would end in an out-of-memory crash).
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { 'drain-timeout': '5s' }), [], {
      NODE_OPTIONS: '--max-old-space-size=32 --max-semi-space-size=1',
    });
    await baton.active(1);
    const settled = async (): Promise<void> => {
      await expect.poll(async () => (await baton.status()).generations.filter((g) => g.state !== 'exited').length, { timeout: 10_000 }).toBe(1);
    };
    const reloads = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const reply = await baton.reload();
        expect(reply.body.ok, JSON.stringify(reply.body)).toBe(true);
      }
      await settled();
    };
    // Warm up first: the JIT, pino's buffers, V8's heap sizing and the bounded per-generation
    // records (status keeps 8 exited generations, memory history 32) settle within about a hundred
    // reloads (seen on Node 22: RSS climbs ~5 MiB, then wanders); that growth is not a leak.
    await reloads(100);
    // A control connection or a /proc read may hold a descriptor for an instant: take the fewest of several readings.
    const steadyFds = async (): Promise<number> => {
      const counts: number[] = [];
      for (let i = 0; i < 10; i++) {
        counts.push(openFds(baton.pid));
        await new Promise((r) => setTimeout(r, 20));
      }
      return Math.min(...counts);
    };
    const fdsBefore = await steadyFds();
    // RSS wanders by a few MiB with the allocator and the collector: compare the highest of three
    // readings before with the lowest of three after, so only growth that lasts counts.
    const before: number[] = [];
    for (let i = 0; i < 3; i++) {
      before.push(rssKb(baton.pid));
      await reloads(5);
    }
    await reloads(185);
    const after: number[] = [];
    for (let i = 0; i < 3; i++) {
      await reloads(5);
      after.push(rssKb(baton.pid));
    }
    const fdsAfter = await steadyFds();
    const growth = Math.min(...after) - Math.max(...before);
    console.log(`200 reloads: supervisor fds ${fdsBefore} → ${fdsAfter}, RSS kB ${before.join('/')} → ${after.join('/')} (lasting growth ${growth} kB)`);
    expect(fdsAfter).toBe(fdsBefore);
    // A leak of 40 KiB per reload (a generation's process object and bookkeeping kept forever)
    // would exceed this. What remains below it is V8 sizing its heap: --trace-gc on Node 22 shows
    // the live heap after full collections going from 13.0 to 13.5 MB over 360 reloads while the
    // committed heap, which RSS follows, steps from 15 to 34 MB.
    expect(growth).toBeLessThan(8 * 1024);
  }, 300_000);
});
