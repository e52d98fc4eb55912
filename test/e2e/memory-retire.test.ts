// `baton heap-snapshot --retire` under load: the generation is replaced first and snapshotted once
// drained, so no request waits on the snapshot's pause; `--compare` adds the replacement's snapshot.
import fs from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

afterEach(cleanupAll);

/** Keep-alive requests on `connections` connections, each one's latency recorded, until stopped. */
function timedLoad(port: number, connections: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      const started = performance.now();
      await new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) failures.push(`HTTP ${res.statusCode}`);
            latencies.push(performance.now() - started);
            resolve();
          });
        });
        req.on('error', (e) => {
          failures.push(e.message);
          resolve();
        });
      });
    }
  };
  const loops = Array.from({ length: connections }, loop);
  return {
    latencies,
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

describe('heap snapshot --retire', () => {
  it('snapshots a generation serving load with no request waiting on its pause (slower than 200 ms, or half the pause when longer); --compare adds its replacement', async () => {
    // A heap worth a pause: ~60 MiB of live objects make the snapshot take a second or more.
    const baton = new BatonProcess(httpConfig(fixture('memory-app.ts'), { env: { MEMORY_MODE: 'heap-leak', LEAK_KIB: '1024' }, memory: { interval: '1s' } }));
    await baton.active(1);
    await new Promise((r) => setTimeout(r, 6000)); // ~60 MiB retained
    baton.writeConfig(httpConfig(fixture('memory-app.ts'), { memory: { interval: '1s' } }));
    const load = timedLoad(await baton.port(), 4);
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    const snap = await baton.cli('heap-snapshot', '--retire', '--json');
    const took = Date.now() - started;
    await new Promise((r) => setTimeout(r, 300));
    await load.stop();
    expect(snap.exitCode, snap.stderr).toBe(0);
    const retired = JSON.parse(snap.stdout) as { path: string; pauseMs: number };
    const oldPath = retired.path;
    // --compare pauses the new generation for its own snapshot (it serves): measured apart, not bounded.
    const cmp = await baton.cli('heap-snapshot', '--compare');
    expect(cmp.exitCode, cmp.stderr).toBe(0);
    const [, newPath] = cmp.stdout.trim().split('\n');
    expect(oldPath).toMatch(/gen1-pid\d+-.*\.heapsnapshot$/);
    expect(newPath).toMatch(/gen3-pid\d+-.*\.heapsnapshot$/);
    const oldBytes = fs.statSync(oldPath!).size;
    expect(oldBytes).toBeGreaterThan(fs.statSync(newPath!).size); // the retired one held the leak
    const sorted = [...load.latencies].sort((a, b) => a - b);
    const max = sorted.at(-1)!;
    console.log(
      `--retire took ${took} ms (old snapshot ${(oldBytes / 1048576).toFixed(0)} MiB, a ${retired.pauseMs} ms pause); ${sorted.length} requests, p50 ${sorted[sorted.length >> 1]!.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
    );
    expect(load.failures).toEqual([]);
    // A request that waited on the snapshot would take its whole pause. 200 ms is the bound the
    // issue sets; a loaded machine stretches the pause and the reload's CPU alike, so the bound
    // grows with the pause, staying half of it: the request that waited could not pass.
    expect(retired.pauseMs).toBeGreaterThan(0);
    expect(max).toBeLessThan(Math.max(200, retired.pauseMs / 2));
    expect((await baton.status()).generations.find((g) => g.state === 'active')!.generation).toBe(3);
  }, 60_000);
});
