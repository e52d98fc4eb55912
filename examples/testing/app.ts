// An app written to be tested: start() listens through the SDK and resolves with its server, so a
// test can install createTestRuntime() first and then drive the drain path as Baton would.
import http from 'node:http';
import { listen, onDrain, ready } from '../../child/index.ts';

/** Starts the app on the listener named `http`; `slowMs` delays /slow answers (work in flight). */
export async function start(options: { slowMs?: number } = {}): Promise<{ server: http.Server; flushed: () => boolean }> {
  let flushed = false;
  const server = http.createServer((req, res) => {
    const answer = (): void => void res.end(`ok ${req.url}\n`);
    if (req.url === '/slow') setTimeout(answer, options.slowMs ?? 200);
    else answer();
  });
  onDrain(async () => {
    // Where a real app flushes a queue or closes a pool.
    flushed = true;
  });
  await listen('http', server);
  ready();
  return { server, flushed: () => flushed };
}
