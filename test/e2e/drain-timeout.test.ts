import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

afterEach(cleanupAll);

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

describe('drain deadlines', () => {
  it('asks a generation holding a long request to exit at the drain timeout', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { 'drain-timeout': '1s', 'shutdown-timeout': '5s' }));
    await baton.active(1);
    const held = holdRequest(await baton.port());
    await expect.poll(async () => (await baton.status()).generations[0]?.connections).toBe(1);
    expect((await baton.reload()).body.ok).toBe(true);
    const timeout = await baton.waitForEvent('drain-timeout');
    expect(timeout).toMatchObject({ generation: 1, connections: 1 });
    expect(await held).toBe('cut');
    const exit = await baton.workerState(1, 'exited');
    expect(exit).toMatchObject({ from: 'draining', code: 0 });
    expect(baton.events.filter((e) => e.type === 'shutdown-timeout')).toEqual([]);
  });

  it('kills a generation that ignores the request at the shutdown timeout and logs the connections cut', async () => {
    const baton = new BatonProcess(
      httpConfig(fixture('http-app.ts'), { 'drain-timeout': '500ms', 'shutdown-timeout': '1s', env: { IGNORE_SIGTERM: '1' } }),
    );
    await baton.active(1);
    const held = holdRequest(await baton.port());
    await expect.poll(async () => (await baton.status()).generations[0]?.connections).toBe(1);
    expect((await baton.reload()).body.ok).toBe(true);
    const timeout = await baton.waitForEvent('shutdown-timeout');
    expect(timeout).toMatchObject({ generation: 1, connections: 1 });
    expect(await held).toBe('cut');
    const exit = await baton.workerState(1, 'exited');
    expect(exit).toMatchObject({ from: 'draining', signal: 'SIGKILL' });
  });
});
