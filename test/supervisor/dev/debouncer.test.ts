import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Debouncer, type ChangeBatch } from '../../../supervisor/dev/watch.ts';

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('Debouncer', () => {
  it('makes one batch of a burst, then another after a quiet window', async () => {
    const batches: ChangeBatch[] = [];
    const d = new Debouncer(30, 1000, (b) => batches.push(b));
    for (let i = 0; i < 5; i++) {
      d.add({ event: 'change', path: 'a.ts' });
      await new Promise((r) => setTimeout(r, 5));
    }
    await expect.poll(() => batches.length).toBe(1);
    expect(batches[0]!.events).toBe(5);
    d.add({ event: 'change', path: 'b.ts' });
    await expect.poll(() => batches.length).toBe(2);
  });

  it('a stalled process does not split a burst: the event that waited in the kernel joins the batch', async () => {
    const batches: ChangeBatch[] = [];
    const d = new Debouncer(50, 5000, (b) => batches.push(b));
    const server = net.createServer((s) => s.on('data', () => d.add({ event: 'change', path: 'late.ts' })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    try {
      // From the check phase: the loop's next stops are the timers (the expired debounce), then the
      // poll (the byte that arrived during the stall) — the order a stalled dev runner sees.
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          d.add({ event: 'change', path: 'first.ts' });
          busyWait(20);
          client.write('x');
          busyWait(100);
          resolve();
        }),
      );
      await expect.poll(() => batches.length).toBe(1);
      await new Promise((r) => setTimeout(r, 150));
      expect(batches.length).toBe(1);
      expect(batches[0]!.changes.map((c) => c.path).sort()).toEqual(['first.ts', 'late.ts']);
    } finally {
      client.destroy();
      server.close();
    }
  });
});
