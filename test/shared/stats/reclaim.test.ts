// Retiring a gone generation's stats and reusing their room (shared/stats/reclaim.ts), in real
// shared memory: register, retire, re-register into the same cells, other processes' views, a
// writer of another generation running through it all, and damaged tombstones.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeLayout, createSegment, openSegment, segmentPath, type OwnerStats, type Stats } from '../../../shared/stats/index.ts';
import { E, ENTRY_BYTES, FREE_KIND } from '../../../shared/stats/layout.ts';
import { instanceName, recordingLogger, startWorker, tempDir } from './helpers.ts';

const BOUNDS = [1, 10, 100];

/** What the SDK registers per generation: a counter per code class and a latency histogram. */
function requestStats(stats: Stats, generation: number) {
  const labels = { generation: String(generation) };
  return {
    ok: stats.counter('test.requests', { ...labels, code_class: '2xx' }),
    failed: stats.counter('test.requests', { ...labels, code_class: '5xx' }),
    latency: stats.histogram('test.request_ms', BOUNDS, labels),
  };
}

function generationsIn(stats: Stats): string[] {
  return [...new Set(stats.snapshot(/^test\.request/).map((s) => s.labels.generation!))].sort();
}

function value(stats: Stats, name: string, labels?: Record<string, string>): number | undefined {
  const s = stats.sample(name, labels);
  return s === undefined ? undefined : s.kind === 'histogram' ? s.count : s.value;
}

function poke(file: string, offset: number, v: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, b, 0, 4, offset);
  fs.closeSync(fd);
}

function peek(file: string, offset: number): number {
  const b = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, b, 0, 4, offset);
  fs.closeSync(fd);
  return b.readInt32LE();
}

function setUp(statsPerSegment = 64): { dir: string; instance: string; owner: OwnerStats } {
  const dir = tempDir();
  const instance = instanceName();
  return { dir, instance, owner: createSegment({ dir, instance, statsPerSegment }) };
}

describe('retiring a generation’s stats', () => {
  it('retire: the series leave every snapshot, unlabelled totals stay; re-registering reuses the cells from 0', () => {
    const { dir, instance, owner } = setUp();
    const total = owner.counter('test.total');
    const gen1 = openSegment({ dir, instance, writer: 1 });
    const one = requestStats(gen1, 1);
    one.ok.inc(5);
    one.latency.record(3);
    total.inc(5);
    const reader = openSegment({ dir, instance }); // has decoded gen 1's entries before the retirement
    expect(generationsIn(reader)).toEqual(['1']);
    const before = owner.usage();
    owner.retireWriter(1);
    expect(owner.retireGeneration(1)).toBe(3);
    for (const s of [owner, reader]) expect(generationsIn(s)).toEqual([]);
    expect(value(reader, 'test.total')).toBe(5);
    expect(owner.usage()).toMatchObject({ stats: before.stats - 3, free: 3, entries: before.entries, cells: before.cells });

    const gen2 = openSegment({ dir, instance, writer: 2 });
    const two = requestStats(gen2, 2);
    two.ok.inc(2);
    two.latency.record(50);
    expect(owner.usage()).toEqual({ ...before, free: 0 });
    for (const s of [owner, reader]) {
      expect(generationsIn(s)).toEqual(['2']);
      expect(value(s, 'test.requests', { generation: '2', code_class: '2xx' })).toBe(2);
      expect(value(s, 'test.requests', { generation: '2', code_class: '5xx' })).toBe(0);
      const h = s.sample('test.request_ms', { generation: '2' });
      expect(h).toMatchObject({ kind: 'histogram', buckets: [0, 0, 1, 0], sum: 50, count: 1 });
    }
    expect(value(owner, 'test.total')).toBe(5);
    owner.destroy();
  });

  it('500 generations in a row keep the table, cells, arena and segment count where the first left them', () => {
    const { dir, instance, owner } = setUp(16);
    let first: ReturnType<OwnerStats['usage']> | undefined;
    let arena = 0;
    for (let g = 1; g <= 500; g++) {
      const gen = openSegment({ dir, instance, writer: 1 + (g % 2) });
      const s = requestStats(gen, g);
      s.ok.inc(g);
      s.latency.record(g);
      expect(value(owner, 'test.requests', { generation: String(g), code_class: '2xx' })).toBe(g);
      owner.retireWriter(1 + (g % 2));
      owner.retireGeneration(g);
      const usage = owner.usage();
      first ??= usage;
      // Arena bytes go only to keys one digit longer (generation 10, 100): 3 keys' worth, each time.
      if (g > 1 && String(g).length === String(g - 1).length) expect(usage.arenaBytes).toBe(arena);
      arena = usage.arenaBytes;
      expect({ ...usage, arenaBytes: 0 }).toEqual({ ...first, arenaBytes: 0 });
    }
    expect(first).toMatchObject({ segments: 1, free: 3 });
    expect(arena - first!.arenaBytes).toBeLessThanOrEqual(2 * 3 * 96);
    expect(owner.files).toHaveLength(1);
    owner.destroy();
  });

  it('a writer of another generation counts exactly while generations around it are retired and their cells reused', async () => {
    const { dir, instance, owner } = setUp();
    const start = owner.gauge('test.start');
    const count = 300_000;
    const worker = startWorker({ mode: 'generation', dir, instance, writer: 1, generation: 2, count, capacities: { statsPerSegment: 64 } });
    await worker.waitFor('ready');
    let cycles = 0;
    const done = worker.waitFor('done', 60_000);
    let finished = false;
    void done.then(() => (finished = true));
    start.set(1);
    // Generations 3, 4, … come and go in writer 2 meanwhile, reusing the same tombstones.
    for (let g = 3; !finished || cycles < 20; g++) {
      const gen = openSegment({ dir, instance, writer: 2 });
      requestStats(gen, g).ok.inc(1);
      owner.retireWriter(2);
      expect(owner.retireGeneration(g)).toBe(3);
      cycles++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await done;
    expect(cycles).toBeGreaterThanOrEqual(20);
    expect(value(owner, 'test.requests', { generation: '2' })).toBe(count);
    expect(owner.sample('test.request_ms', { generation: '2' })).toMatchObject({ count });
    expect(generationsIn(owner)).toEqual(['2']);
    expect(owner.usage().free).toBe(3);
    owner.destroy();
  });

  it('a reader in another process never sees a retired stat’s name on the cells of the stat that reused them', async () => {
    const { dir, instance, owner } = setUp();
    const start = owner.gauge('test.start');
    const stop = owner.gauge('test.stop');
    const reader = startWorker({ mode: 'watch-generations', dir, instance, capacities: { statsPerSegment: 64 } });
    await reader.waitFor('ready');
    start.set(1);
    for (let g = 1; g <= 2000; g++) {
      const gen = openSegment({ dir, instance, writer: 1 });
      gen.counter('test.requests', { generation: String(g) }).inc(g);
      owner.retireWriter(1);
      owner.retireGeneration(g);
    }
    stop.set(1);
    const done = await reader.waitFor('done');
    expect(done.reads).toBeGreaterThan(10);
    expect(done.generations).toBeGreaterThan(10);
    expect(done.wrong).toBe(0);
    expect(owner.usage()).toMatchObject({ free: 1 });
    owner.destroy();
  });

  it('a generation still writing is not the owner’s to retire by mistake: other generations’ labels and unlabelled stats are left', () => {
    const { dir, instance, owner } = setUp();
    const gen = openSegment({ dir, instance, writer: 1 });
    requestStats(gen, 10).ok.inc(4);
    gen.counter('test.requests', { generation: '1' }).inc(1); // "1" is not "10"
    expect(owner.retireGeneration(1)).toBe(1);
    expect(generationsIn(owner)).toEqual(['10']);
    expect(value(owner, 'test.requests', { generation: '10', code_class: '2xx' })).toBe(4);
    expect(owner.retireGeneration(999)).toBe(0);
    owner.destroy();
  });
});

describe('a damaged tombstone', () => {
  /** Retires generation 1's three stats and returns the table index and byte offset of its counter's tombstone. */
  function retiredOne(owner: OwnerStats, dir: string, instance: string): { file: string; entry: number } {
    const gen = openSegment({ dir, instance, writer: 1 });
    requestStats(gen, 1).ok.inc();
    owner.retireWriter(1);
    owner.retireGeneration(1);
    const file = segmentPath(dir, instance, 0);
    const layout = computeLayout({ statsPerSegment: 64 });
    for (let i = 0; i < 64; i++) {
      const entry = layout.tableOffset + i * ENTRY_BYTES;
      if (peek(file, entry + 4 * E.kind) === FREE_KIND && peek(file, entry + 4 * E.boundsCount) === 1) return { file, entry };
    }
    throw new Error('no tombstone');
  }

  it('pointing at a live stat’s cells: reported, not reused, the live stat untouched', () => {
    const { dir, instance, owner } = setUp();
    const live = owner.counter('test.live');
    live.inc(42);
    const { file, entry } = retiredOne(owner, dir, instance);
    // Every tombstone (two counters, one histogram) made to claim cell 1 (test.live's, after the overflow counter).
    const layout = computeLayout({ statsPerSegment: 64 });
    for (let i = 0; i < 64; i++) {
      const at = layout.tableOffset + i * ENTRY_BYTES;
      if (peek(file, at + 4 * E.kind) === FREE_KIND) poke(file, at + 4 * E.cell, 1);
    }
    poke(file, entry + 4 * E.stamp, peek(file, entry + 4 * E.stamp) + 2); // so catalogs re-read it
    poke(file, 4 * 18, peek(file, 4 * 18) + 1); // H.tableEpoch
    const logger = recordingLogger();
    const gen = openSegment({ dir, instance, writer: 2, logger });
    const entries = owner.usage().entries;
    requestStats(gen, 2).ok.inc(7);
    expect(logger.warns).toContainEqual(expect.stringMatching(/did not reuse retired entry \d+ .*its cells overlap those of entry/));
    expect(value(owner, 'test.live')).toBe(42);
    expect(value(owner, 'test.requests', { generation: '2', code_class: '2xx' })).toBe(7);
    expect(owner.usage().entries).toBe(entries + 3); // appended instead
    owner.destroy();
  });

  it('naming cells or arena bytes out of range, or a stamp stuck odd: reported and skipped', () => {
    const { dir, instance, owner } = setUp();
    const { file, entry } = retiredOne(owner, dir, instance);
    poke(file, entry + 4 * E.cell, 1 << 20);
    poke(file, entry + 4 * E.stamp, peek(file, entry + 4 * E.stamp) + 2);
    const logger = recordingLogger();
    const reader = openSegment({ dir, instance, logger });
    expect(reader.usage().free).toBe(2);
    expect(logger.warns).toEqual([expect.stringMatching(/skipped segment 0 entry \d+ .*retired entry names cells 1048576/)]);
    poke(file, entry + 4 * E.cell, 1);
    poke(file, entry + 4 * E.keyLength, 1 << 24);
    poke(file, entry + 4 * E.stamp, peek(file, entry + 4 * E.stamp) + 2);
    poke(file, 4 * 18, peek(file, 4 * 18) + 1);
    expect(reader.usage().free).toBe(2);
    expect(logger.warns[1]).toMatch(/retired entry names arena bytes/);
    // Odd with nobody writing: seen as damage by a process that holds the lock (a registration).
    poke(file, entry + 4 * E.stamp, peek(file, entry + 4 * E.stamp) + 1);
    poke(file, 4 * 18, peek(file, 4 * 18) + 1);
    const gen = openSegment({ dir, instance, writer: 2, logger });
    requestStats(gen, 2).ok.inc();
    expect(logger.warns).toContainEqual(expect.stringMatching(/its stamp \d+ says a write is in progress, but none is/));
    expect(value(owner, 'test.requests', { generation: '2', code_class: '2xx' })).toBe(1);
    owner.destroy();
  });
});
