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
    // Warm up first: the JIT, the control server's first requests and pino's buffers are not leaks.
    for (let i = 0; i < 20; i++) expect((await baton.reload()).body.ok).toBe(true);
    await settled();
    const fdsBefore = openFds(baton.pid);
    const rssBefore = rssKb(baton.pid);

    for (let i = 0; i < 200; i++) {
      const reply = await baton.reload();
      expect(reply.body.ok, JSON.stringify(reply.body)).toBe(true);
    }
    await settled();
    const fdsAfter = openFds(baton.pid);
    const rssAfter = rssKb(baton.pid);
    console.log(`200 reloads: supervisor fds ${fdsBefore} → ${fdsAfter}, RSS ${rssBefore} kB → ${rssAfter} kB`);
    expect(fdsAfter).toBe(fdsBefore);
    // A leak of even one small object per reload would show; GC timing does not need more than this.
    expect(rssAfter - rssBefore).toBeLessThan(6 * 1024);
  }, 180_000);
});
