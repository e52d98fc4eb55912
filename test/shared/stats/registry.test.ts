// Registration, handles, histograms, growth into new segments and overflow, within one process
// (separate mappings behave as separate processes would: each has its own catalog and views).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OVERFLOW_STAT, STATS_ERR, computeLayout, createSegment, openSegment, type StatSample } from '../../../shared/stats/index.ts';
import { instanceName, recordingLogger, tempDir } from './helpers.ts';

function setup(options: Record<string, unknown> = {}) {
  const dir = tempDir();
  const instance = instanceName();
  const owner = createSegment({ dir, instance, ...options });
  return { dir, instance, owner };
}

function value(samples: StatSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && JSON.stringify(x.labels) === JSON.stringify(labels));
  return s && s.kind !== 'histogram' ? s.value : undefined;
}

describe('stats registration and handles', () => {
  it('counts, gauges and sums writers; the same name and labels in any order is one stat', () => {
    const { dir, instance, owner } = setup();
    const gen = openSegment({ dir, instance, writer: 5 });
    owner.counter('http.ingress.downstream_rq_total', { code: '200', method: 'GET' }).inc();
    gen.counter('http.ingress.downstream_rq_total', { method: 'GET', code: '200' }).inc(41);
    gen.counter('http.ingress.downstream_rq_total', { method: 'GET', code: '500' }).inc(2);
    const g = owner.gauge('conns');
    g.set(10);
    g.inc();
    g.dec(3);
    gen.gauge('conns').inc(4.5);
    const snap = gen.snapshot();
    expect(value(snap, 'http.ingress.downstream_rq_total', { code: '200', method: 'GET' })).toBe(42);
    expect(value(snap, 'http.ingress.downstream_rq_total', { code: '500', method: 'GET' })).toBe(2);
    expect(value(snap, 'conns')).toBe(12.5);
    expect(snap.filter((s) => s.name === 'http.ingress.downstream_rq_total')).toHaveLength(2);
    owner.destroy();
  });

  it('keeps counters monotonic: negative and NaN increments are ignored, not thrown', () => {
    const { owner } = setup();
    const c = owner.counter('mono');
    c.inc(5);
    c.inc(-3);
    c.inc(Number.NaN);
    c.inc(0.5);
    expect(owner.sample('mono')).toMatchObject({ value: 5.5 });
    owner.destroy();
  });

  it('returns the same handle for the same stat in one process', () => {
    const { owner } = setup();
    expect(owner.counter('same', { a: '1' })).toBe(owner.counter('same', { a: '1' }));
    expect(owner.histogram('h', [1, 2])).toBe(owner.histogram('h', [1, 2]));
    owner.destroy();
  });

  it('refuses bad names, labels, kinds and bounds at registration with clear errors', () => {
    const { dir, instance, owner } = setup();
    const bad = (fn: () => unknown, message: RegExp) => expect(fn).toThrow(expect.objectContaining({ code: STATS_ERR.invalid, message: expect.stringMatching(message) }));
    bad(() => owner.counter('1abc'), /stat name "1abc" must match/);
    bad(() => owner.counter('a-b'), /stat name "a-b"/);
    bad(() => owner.counter(''), /stat name ""/);
    bad(() => owner.counter('ok', { 'bad-label': 'x' }), /label name "bad-label"/);
    bad(() => owner.counter('ok', { __reserved: 'x' }), /label name "__reserved"/);
    bad(() => owner.counter('ok', { n: 5 as unknown as string }), /label n of ok must be a string/);
    bad(() => owner.histogram('h', [1], { le: '1' }), /cannot have a label named "le"/);
    bad(() => owner.histogram('h', []), /needs 1 to 1024 bucket bounds/);
    bad(() => owner.histogram('h', [2, 1]), /strictly increasing/);
    bad(() => owner.histogram('h', [1, Number.NaN]), /finite/);
    bad(() => owner.histogram('h', [1, Infinity]), /finite/);
    owner.counter('kind.c');
    bad(() => owner.gauge('kind.c'), /registered as a counter, not a gauge/);
    bad(() => openSegment({ dir, instance, writer: 1 }).gauge('kind.c'), /registered as a counter, not a gauge/);
    bad(() => openSegment({ dir, instance, writer: 1 }).gauge('kind.c', { other: 'labels' }), /already registered as a counter/);
    bad(() => openSegment({ dir, instance, writer: 1 }).gauge('kind_c'), /already registered as a counter/); // same Prometheus family
    owner.histogram('hist', [1, 2]);
    bad(() => openSegment({ dir, instance, writer: 1 }).histogram('hist', [1, 3]), /registered with bounds \[1, 2\], not \[1, 3\]/);
    expect(owner.snapshot().map((s) => s.name)).toEqual([OVERFLOW_STAT, 'kind.c', 'hist']);
    owner.destroy();
  });

  it('puts each value in the first bucket whose bound is >= it (le), by linear and binary search', () => {
    const { owner } = setup();
    const h = owner.histogram('small', [1, 2, 5]);
    const values = [0.5, 1, 1.5, 2, 5, 5.01, -3, Number.NaN, 1e300];
    for (const v of values) h.record(v);
    expect(owner.sample('small')).toMatchObject({ kind: 'histogram', bounds: [1, 2, 5], buckets: [3, 2, 1, 3], count: 9 });

    const bounds = Array.from({ length: 20 }, (_, i) => (i - 5) * 1.5);
    const big = owner.histogram('big', bounds);
    const expected = new Array<number>(bounds.length + 1).fill(0);
    let sum = 0;
    for (let i = 0; i < 5000; i++) {
      const v = i % 50 === 0 ? bounds[i % bounds.length]! : (Math.random() - 0.3) * 40;
      big.record(v);
      sum += v;
      const at = bounds.findIndex((b) => v <= b);
      expected[at === -1 ? bounds.length : at]! += 1;
    }
    const read = owner.sample('big');
    expect(read).toMatchObject({ buckets: expected, count: 5000 });
    expect(read?.kind === 'histogram' && read.sum).toBeCloseTo(sum, 6);
    owner.destroy();
  });

  it('adds segments when one is full; a mapping opened before sees the new stats', () => {
    const { dir, instance, owner } = setup({ statsPerSegment: 4, cellsPerSegment: 8 });
    const early = openSegment({ dir, instance, statsPerSegment: 4, cellsPerSegment: 8, writer: 2 });
    expect(early.files).toHaveLength(1);
    for (let i = 0; i < 10; i++) owner.counter(`grow.c${i}`).inc(i);
    owner.histogram('grow.h', [1, 2, 3, 4]).record(3); // 7 cells: needs a segment of its own
    expect(fs.readdirSync(dir).sort()).toEqual([0, 1, 2, 3].map((k) => `baton-${process.getuid?.()}-${instance}.${k}`));
    for (const file of owner.files) expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    const seen = early.snapshot(/^grow\./);
    expect(early.files).toHaveLength(4);
    expect(seen.map((s) => (s.kind === 'histogram' ? s.count : s.value))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1]);
    // Registering through the early mapping finds the existing stat in segment 2, no duplicate.
    early.counter('grow.c9').inc(100);
    expect(owner.sample('grow.c9')).toMatchObject({ value: 109 });
    expect(owner.snapshot(/^grow\.c9$/)).toHaveLength(1);
    owner.destroy();
  });

  it('past maxBytes and maxNameLength: one warning, the excess counted, no-op handles', () => {
    const logger = recordingLogger();
    const capacities = { statsPerSegment: 4 };
    const segmentBytes = computeLayout(capacities).segmentBytes;
    const two = setup({ ...capacities, logger, maxNameLength: 64, maxBytes: 2 * segmentBytes + 100 });
    expect(two.owner.maxBytes).toBe(2 * segmentBytes);
    const counters = Array.from({ length: 12 }, (_, i) => two.owner.counter(`fill.c${i}`)); // 7 fit beside the overflow counter
    const gauge = two.owner.gauge('fill.g');
    const hist = two.owner.histogram('fill.h', [1]);
    const long = two.owner.counter(`x${'y'.repeat(70)}`);
    for (const c of counters) c.inc(3);
    gauge.set(1);
    gauge.dec();
    hist.record(5);
    long.inc();
    expect(logger.warns).toHaveLength(1);
    expect(logger.warns[0]).toMatch(/no room for "fill\.c7": the segments of .* reached maxBytes \(2 × \d+ bytes\).*counted in baton\.stats\.overflow/);
    expect(two.owner.sample(OVERFLOW_STAT)).toMatchObject({ value: 5 + 2 + 1 });
    expect(two.owner.snapshot(/^fill\./).map((s) => s.name)).toEqual(['fill.c0', 'fill.c1', 'fill.c2', 'fill.c3', 'fill.c4', 'fill.c5', 'fill.c6']);
    expect(fs.readdirSync(two.dir)).toHaveLength(2);
    // Asking again returns the same no-op handle: counted once.
    two.owner.counter('fill.c11').inc();
    expect(two.owner.sample(OVERFLOW_STAT)).toMatchObject({ value: 8 });
    // Another process hitting the limit counts in its own slot of the same counter.
    const other = openSegment({ dir: two.dir, instance: two.instance, ...capacities, writer: 4, logger });
    other.counter('fill.other').inc();
    expect(two.owner.sample(OVERFLOW_STAT)).toMatchObject({ value: 9 });
    expect(logger.warns).toHaveLength(2); // one per process
    two.owner.destroy();
  });

  it('a read-only mapping reads everything and hands out no-op handles with one warning', () => {
    const { dir, instance, owner } = setup();
    owner.counter('ro.c').inc(3);
    const logger = recordingLogger();
    const reader = openSegment({ dir, instance, logger });
    expect(reader.writer).toBeUndefined();
    reader.counter('ro.c').inc(100);
    reader.counter('ro.new').inc();
    expect(logger.warns).toEqual([expect.stringContaining('has no writer slot')]);
    expect(owner.sample('ro.c')).toMatchObject({ value: 3 });
    expect(owner.sample('ro.new')).toBeUndefined();
    owner.destroy();
  });

  it('retires a writer: counters and histograms carry on, its gauges drop out, its index is reused', () => {
    const { dir, instance, owner } = setup();
    expect([owner.allocateWriter(), owner.allocateWriter()]).toEqual([1, 2]);
    const one = openSegment({ dir, instance, writer: 1 });
    one.counter('r.c').inc(10);
    one.gauge('r.g').set(4);
    one.histogram('r.h', [1]).record(0.5);
    owner.gauge('r.g').set(1);
    owner.retireWriter(1);
    expect(owner.allocateWriter()).toBe(1);
    const snap = owner.snapshot(/^r\./);
    expect(snap).toEqual([
      { name: 'r.c', labels: {}, kind: 'counter', value: 10 },
      { name: 'r.g', labels: {}, kind: 'gauge', value: 1 },
      { name: 'r.h', labels: {}, kind: 'histogram', bounds: [1], buckets: [1, 0], sum: 0.5, count: 1 },
    ]);
    const again = openSegment({ dir, instance, writer: 1 });
    again.counter('r.c').inc();
    again.histogram('r.h', [1]).record(3);
    expect(owner.snapshot(/^r\.[ch]$/)).toEqual([
      { name: 'r.c', labels: {}, kind: 'counter', value: 11 },
      { name: 'r.h', labels: {}, kind: 'histogram', bounds: [1], buckets: [1, 1], sum: 3.5, count: 2 },
    ]);
    expect(() => owner.retireWriter(0)).toThrow(/writer must be an integer from 1 to 15/);
    owner.destroy();
  });

  it('filters snapshots by name, also with a /g regular expression', () => {
    const { owner } = setup();
    for (const name of ['a.one', 'a.two', 'b.one']) owner.counter(name);
    const global = /^a\./g;
    expect(owner.snapshot(global).map((s) => s.name)).toEqual(['a.one', 'a.two']);
    expect(owner.snapshot(global).map((s) => s.name)).toEqual(['a.one', 'a.two']);
    expect(owner.snapshot(/one$/).map((s) => s.name)).toEqual(['a.one', 'b.one']);
    owner.destroy();
  });
});
