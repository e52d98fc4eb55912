import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

const CANARY = { window: '2500ms', 'max-error-rate': '1%', 'max-p99-ratio': 2, 'min-requests': 100 };

function config(env: Record<string, string>, window = CANARY.window): Record<string, unknown> {
  return httpConfig(fixture('canary-app.ts'), { canary: { ...CANARY, window }, env });
}

async function servingPid(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
  return Number(/pid (\d+)/.exec(await res.text())?.[1]);
}

describe('canary window: slow and crashing releases', () => {
  it('rolls back a release 3× slower at p99 (max-p99-ratio 2), with no failed request', async () => {
    // A longer window and mostly keep-alive clients: p99 needs more samples than a 5xx share, and
    // new connections cost the CPU the timers of both generations compete for.
    // Delays long beside a loaded machine's own latency: that adds to both p99s alike, so a 3×
    // slower handler makes a p99 over 2× only while its delay outweighs the machine's (load 10
    // added ~60-75 ms to a 20 → 60 ms pair: 79 → 135 ms, not rolled back).
    const baton = new BatonProcess(config({ DELAY_MS: '50' }, '5s'));
    await baton.active(1);
    const port = await baton.port();
    const oldPid = await servingPid(port);
    const load = startLoad({ port }, { keepAlive: 6, newConnection: 2, maxMs: 60_000 });
    // Long enough for a baseline of a few warm seconds (sampled each second).
    await load.progress(80);
    baton.writeConfig(config({ DELAY_MS: '150' }, '5s'));
    const cli = await baton.cli('reload', '--wait-canary');
    const opened = await baton.waitForEvent('canary-open');
    expect(cli.exitCode, `${cli.stdout} baseline ${JSON.stringify(opened.baseline)}`).toBe(1);
    expect(cli.stderr).toMatch(/rolled back: p99 \d+ms > 2 × \d+ms over \d+ requests/);
    await load.progress(10);
    const counts = await load.stop();
    expect(counts.requests - counts.ok, describeCounts(counts)).toBe(0);
    // The rolled-back generation stops accepting when it reads its drain message, which may come
    // after the command's answer: once it has exited, only the old one can answer.
    await baton.workerState(2, 'exited');
    expect(await servingPid(port)).toBe(oldPid);
    console.log(`${cli.stderr.trim()}; baseline ${JSON.stringify(opened.baseline)}; ${describeCounts(counts)}`);
  });

  it('rolls back when the new generation crashes during its window, refusing no connection', async () => {
    const baton = new BatonProcess(config({}));
    await baton.active(1);
    const port = await baton.port();
    const oldPid = await servingPid(port);
    const load = startLoad({ port }, { keepAlive: 2, newConnection: 6, maxMs: 60_000 });
    await load.progress(40);
    baton.writeConfig(config({ CRASH_AFTER_MS: '700' }));
    const cli = await baton.cli('reload', '--wait-canary');
    expect(cli.exitCode, cli.stdout).toBe(1);
    expect(cli.stderr).toMatch(/rolled back: generation 2 was killed by SIGKILL during its canary window/);
    await load.progress(40);
    const counts = await load.stop();
    expect(counts.refused, describeCounts(counts)).toBe(0);
    // Only requests in flight on the killed process can fail, at most one per client.
    expect(counts.reset + counts.other, describeCounts(counts)).toBeLessThanOrEqual(8);
    expect(await servingPid(port)).toBe(oldPid);
    // A rollback, not a crash restart: no generation 3.
    expect(baton.events.filter((e) => e.type === 'worker-starting' && e.generation === 3)).toEqual([]);
    expect((await baton.status()).active).toBe(1);
    console.log(`crash in the window: ${describeCounts(counts)}`);
  });
});
