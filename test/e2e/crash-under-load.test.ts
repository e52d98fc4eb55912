import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

describe('crash under load', () => {
  it('SIGKILL of the active generation refuses no connection and a new generation serves', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { restart: { 'backoff-initial': '50ms' } }));
    await baton.active(1);
    const port = await baton.port();
    const load = startLoad({ port }, { keepAlive: 0, newConnection: 6 });
    await load.progress(10);
    const victim = (await baton.status()).generations.find((g) => g.state === 'active');
    expect(victim?.generation).toBe(1);
    process.kill(victim!.pid, 'SIGKILL');
    await baton.active(2);
    await load.progress(10);
    const counts = await load.stop();
    console.log(`crash under load: ${describeCounts(counts)} (resets are requests in flight on the killed generation)`);
    expect(counts.refused, describeCounts(counts)).toBe(0);
    expect(counts.other, describeCounts(counts)).toBe(0);
    expect(counts.non200, describeCounts(counts)).toBe(0);
    // At most one in-flight request per client can die with the killed process.
    expect(counts.reset).toBeLessThanOrEqual(6);
    expect(counts.bodies.some((b) => b.startsWith('generation 2 '))).toBe(true);
    const crash = await baton.waitForEvent('restarting', (e) => e.generation === 1);
    expect(crash.message).toContain('SIGKILL');
  });

  it('gives up after repeated crashes and exits non-zero, saying why', async () => {
    const baton = new BatonProcess(
      httpConfig(fixture('exits-at-start.ts'), { restart: { 'max-failures': 3, 'backoff-initial': '10ms', window: '1m' } }),
    );
    const { exitCode } = await baton.exited;
    expect(exitCode).toBe(1);
    const fatal = await baton.waitForEvent('crash-loop');
    expect(fatal.message).toContain('3 failures within 1m00s');
    expect(fatal.message).toContain('exited with code 3');
    expect(fatal.stderr.join('\n')).toContain('fixture: cannot start');
  });
});
