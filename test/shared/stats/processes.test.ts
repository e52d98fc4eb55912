// Real processes sharing one segment: concurrent increments, a SIGKILLed writer retired,
// concurrent registration of the same names.
import { describe, expect, it } from 'vitest';
import { createSegment, openSegment, type StatSample } from '../../../shared/stats/index.ts';
import { instanceName, startWorker, tempDir } from './helpers.ts';

function valueOf(samples: StatSample[], name: string): number | undefined {
  const s = samples.find((x) => x.name === name);
  return s && s.kind !== 'histogram' ? s.value : undefined;
}

describe('stats across processes', () => {
  it('two writers incrementing one counter 1,000,000 times each at once lose nothing', async () => {
    const count = 1_000_000;
    // On a loaded machine the two may get no CPU at the same time; then the run proves nothing
    // about concurrency, so it is repeated (each run must still be exact) until one overlapped.
    const overlaps: number[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      const dir = tempDir();
      const instance = instanceName();
      const owner = createSegment({ dir, instance });
      // In lockstep (chunks of 10,000), so the runs overlap all along, not one after the other.
      const workers = [1, 2].map((writer) => startWorker({ mode: 'increment', dir, instance, writer, count, peers: 2 }));
      await Promise.all(workers.map((w) => w.waitFor('ready')));
      owner.gauge('test.start').set(1);
      const [a, b] = await Promise.all(workers.map((w) => w.waitFor('done', 50_000)));
      expect(owner.sample('test.counter')).toMatchObject({ kind: 'counter', value: 2 * count });
      for (const w of workers) expect((await w.exited).code).toBe(0);
      owner.destroy();
      // Chunks (of 200) during which the other process's increments landed.
      overlaps.push(Number(a!.concurrent) + Number(b!.concurrent));
      // One chunk in which both landed increments is proof enough that they ran at the same time;
      // asking for more makes the test depend on how busy the machine's two cores are.
      if (overlaps.at(-1)! >= 1) return;
    }
    throw new Error(`the two writers never ran at the same time (overlapping chunks per run: ${overlaps.join(', ')}); machine too loaded?`);
  });

  it('a SIGKILLed writer, once retired, leaves its counts and drops its gauge', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    const live = openSegment({ dir, instance, writer: 2 });
    live.gauge('test.inflight').set(3);

    const victim = startWorker({ mode: 'retire', dir, instance, writer: 1 });
    await victim.waitFor('ready');
    expect(valueOf(owner.snapshot(), 'test.requests')).toBe(100);
    expect(valueOf(owner.snapshot(), 'test.inflight')).toBe(10);

    await victim.kill();
    // Dead but not yet reaped: its last stores are in the mapping and still count.
    expect(valueOf(owner.snapshot(), 'test.inflight')).toBe(10);
    owner.retireWriter(1);
    const after = owner.snapshot();
    expect(valueOf(after, 'test.requests')).toBe(100);
    expect(valueOf(after, 'test.inflight')).toBe(3);
    expect(after.find((s) => s.name === 'test.latency')).toMatchObject({ buckets: [0, 1, 0], sum: 1.5, count: 1 });

    // Counters keep rising from where they were, from a new writer and from the reused index 1.
    openSegment({ dir, instance, writer: 3 }).counter('test.requests').inc(5);
    const reused = startWorker({ mode: 'retire', dir, instance, writer: 1 });
    await reused.waitFor('ready');
    const final = live.snapshot();
    expect(valueOf(final, 'test.requests')).toBe(205);
    expect(valueOf(final, 'test.inflight')).toBe(10);
    expect(final.find((s) => s.name === 'test.latency')).toMatchObject({ buckets: [0, 2, 0], sum: 3, count: 2 });
    owner.destroy();
  });

  it('a reader never sees a counter go down or count twice while writers are retired', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    const stop = owner.gauge('test.stop');
    const watcher = startWorker({ mode: 'watch', dir, instance, name: 'test.moving' });
    await watcher.waitFor('ready');
    owner.gauge('test.start').set(1);
    // Each round is a generation on writer 1 that counts, is gone, and is retired (its slot moved
    // into `retired`); the next one maps the segment afresh, as a new process does.
    let total = 0;
    for (const until = performance.now() + 1500; performance.now() < until && total < 500; ) {
      openSegment({ dir, instance, writer: 1 }).counter('test.moving').inc();
      total++;
      owner.retireWriter(1);
    }
    stop.set(1);
    const done = await watcher.waitFor('done');
    expect(owner.sample('test.moving')).toMatchObject({ value: total });
    expect(Number(done.reads)).toBeGreaterThan(1000);
    expect(done).toMatchObject({ decreases: 0 });
    expect(Number(done.max)).toBeLessThanOrEqual(total);
    owner.destroy();
  });

  it('two processes registering the same 200 names at once get 200 stats and share their cells', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const capacities = { statsPerSegment: 64 }; // segments are added mid-race too
    const owner = createSegment({ dir, instance, ...capacities });
    owner.counter('test.progress');
    // In lockstep: both register name i, then both name i + 1, and so on.
    const workers = [1, 2].map((writer) => startWorker({ mode: 'register', dir, instance, writer, count: 200, capacities, peers: 2 }));
    await Promise.all(workers.map((w) => w.waitFor('ready')));
    owner.gauge('test.start').set(1);
    const [a, b] = await Promise.all(workers.map((w) => w.waitFor('done')));
    expect(Number(a!.start)).toBeLessThan(Number(b!.end));
    expect(Number(b!.start)).toBeLessThan(Number(a!.end));
    expect([a!.lockstep, b!.lockstep]).toEqual([true, true]);

    const registered = owner.snapshot(/^test\.reg\./);
    expect(registered).toHaveLength(200);
    expect(new Set(registered.map((s) => s.name)).size).toBe(200);
    for (const s of registered) {
      // Each process added 1 (or recorded 2 once): equal totals prove both handles hit one cell.
      if (s.kind === 'histogram') expect(s).toMatchObject({ buckets: [0, 2, 0], sum: 4, count: 2 });
      else expect(s.value).toBe(2);
    }
    expect(owner.files.length).toBeGreaterThan(1);
    owner.destroy();
  });
});
