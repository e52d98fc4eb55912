// How an app tests its own drain path with baton's test runtime (run by `npm test`).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { createTestRuntime, useRuntime } from '../../child/testing.ts';
import { start } from './app.ts';

function get(port: number, path: string, agent: http.Agent): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
      })
      .on('error', reject);
  });
}

it('finishes the request in flight, closes the keep-alive connection after it, runs onDrain, then exits 0', async () => {
  const runtime = createTestRuntime();
  useRuntime(runtime);
  const { server, flushed } = await start({ slowMs: 300 });
  expect(runtime.isReady).toBe(true);
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  expect((await get(port, '/fast', agent)).connection).toBe('keep-alive');

  const inFlight = get(port, '/slow', agent);
  // The request has reached the app (one open connection) before the drain is asked for.
  await expect.poll(() => runtime.connections, { timeout: 2000 }).toBe(1);
  const exited = runtime.drain();
  const answer = await inFlight;
  expect(answer).toMatchObject({ status: 200, body: 'ok /slow\n', connection: 'close' });
  expect(await exited).toBe(0);
  expect(flushed()).toBe(true);
  expect(server.listening).toBe(false);
  agent.destroy();
});
