/**
 * bench/lib/load-worker.ts's tallies with a real server: every 200 OK counted by the pid the body
 * or a header names, in bins of the monotonic clock, and the connections the clients opened.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startLoad } from '../../../bench/lib/load.ts';
import { mergeTallies } from '../../../bench/lib/rates-report.ts';

let server: http.Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A server whose answers alternate between two "pids", in the body and in a header. */
async function serve(): Promise<number> {
  let n = 0;
  server = http.createServer((_req, res) => {
    const pid = n++ % 2 === 0 ? 111 : 222;
    res.setHeader('x-served-by', String(pid));
    res.end(`generation 1 pid ${pid}\n`);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

describe('load generator tallies', () => {
  for (const identify of ['body-pid', 'x-served-by']) {
    it(`counts every 200 OK by the pid that served it (${identify}), and one connection per keep-alive client`, async () => {
      const port = await serve();
      const load = startLoad({ port, kind: 'keep-alive', clients: 3, windowMs: 100, timeoutMs: 5_000, identify, binMs: 50 });
      // The worker thread's start is not counted against it: wait until it has answers.
      await new Promise((r) => setTimeout(r, 1000));
      await load.phase('end');
      const phases = await load.stop();
      const counted = phases.warmup!;
      expect(counted.ok).toBeGreaterThan(10);
      const by = counted.byServer!;
      expect(Object.keys(by).sort()).toEqual(['111', '222']);
      const total = Object.values(by).reduce((a, t) => a + t.counts.reduce((x, y) => x + y, 0), 0);
      expect(total).toBe(counted.ok);
      expect(counted.newConnections).toBe(3);
      // Merged over phases on the same clock, nothing is lost.
      const merged = mergeTallies([by, by]);
      expect(Object.values(merged).reduce((a, t) => a + t.counts.reduce((x, y) => x + y, 0), 0)).toBe(2 * total);
    });
  }
});
