import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig, waitForGone } from '../helpers/baton.ts';

afterEach(cleanupAll);

describe('SIGKILL of the supervisor', () => {
  it('leaves no generation behind, active or draining, 2 s later', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const port = await baton.port();
    // A long request keeps generation 1 draining after the reload.
    const slow = new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow?ms=30000', agent: false }, () => resolve());
      req.on('error', () => resolve());
    });
    await baton.workerState(1, 'active');
    await expect.poll(async () => (await baton.status()).generations[0]?.connections).toBe(1);
    expect((await baton.reload()).body.ok).toBe(true);
    const pids = (await baton.status()).generations.filter((g) => g.state !== 'exited').map((g) => g.pid);
    expect(pids).toHaveLength(2);

    baton.proc.kill('SIGKILL');
    await baton.exited;
    expect(await waitForGone(pids, 2_000)).toEqual([]);
    await slow;
  });
});
