import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture } from '../helpers/baton.ts';
import { expectAllAnswered, startLoad } from '../helpers/load.ts';
import { freePort } from '../helpers/ports.ts';

afterEach(cleanupAll);

function slow(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(-1));
    });
    req.on('error', () => resolve(-1));
  });
}

describe('preload: auto', () => {
  it('a plain server.listen(PORT) node program gets the preload: ready by the SDK, drains without a failed request, and status says so', async () => {
    const port = await freePort();
    const baton = new BatonProcess({
      name: 'test',
      command: fixture('canary-plain-app.js'),
      env: { PORT: String(port) },
      listeners: [{ name: 'http', address: `127.0.0.1:${port}` }],
      'ready-timeout': '20s',
      'drain-timeout': '10s',
      'shutdown-timeout': '2s',
    });
    const ready = await baton.workerState(1, 'ready');
    expect(ready.via).toBe('sdk');
    expect((await baton.status()).preload).toBe(true);
    expect((await baton.cli('status')).stdout).toMatch(/Baton's preload is loaded/);
    const load = startLoad({ port }, { keepAlive: 4, newConnection: 4, maxMs: 60_000 });
    await load.progress(20);
    const inFlight = slow(port);
    expect((await baton.reload()).body.ok).toBe(true);
    await load.progress(20);
    expect((await baton.reload()).body.ok).toBe(true);
    await load.progress(20);
    expectAllAnswered(await load.stop());
    // The request in flight at the reload was finished by the draining generation.
    expect(await inFlight).toBe(200);
    const exit = await baton.workerState(1, 'exited');
    expect(exit.from).toBe('draining');
    expect(exit.code).toBe(0);
  });
});
