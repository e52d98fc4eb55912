// The leak watch's judgement on synthetic series shaped like real ones: a 5 s sampling interval (the
// default), a GC sawtooth on V8 heap used (major GCs every few seconds under load, their post-GC
// figures reported alongside), warm-ups that level off, committed-but-free growth, native
// fragmentation. Each case runs the detector at every sample, as the monitor does.
import { describe, expect, it } from 'vitest';
import type { MemoryPoint } from '../../../supervisor/memory/history.ts';
import { detectLeak, minima, theilSen, type LeakSettings } from '../../../supervisor/memory/leak-detect.ts';

const MiB = 1024 * 1024;
const DEFAULTS: LeakSettings = { minSlope: MiB, minGrowth: 4 * MiB, minR2: 0.8, loadTolerance: 0.5, window: 10 * 60_000 };
const STEP = 5000;

/** A seeded PRNG, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Shape {
  /** Live V8 heap (what survives a major GC) at t seconds, MiB. */
  heap: (t: number) => number;
  external?: (t: number) => number;
  malloc?: (t: number) => number;
  /** V8 committed but free, MiB. */
  v8Free?: (t: number) => number;
  mallocFree?: (t: number) => number;
  connections?: (t: number) => number;
  /** Seconds between major GCs (Infinity: none, an idle process). */
  gcEvery?: number;
  /** Only RSS (a program without the SDK). */
  rssOnly?: boolean;
}

/** Samples every STEP ms for `seconds`, as the monitor would record them. */
function series(shape: Shape, seconds: number, seed = 1): MemoryPoint[] {
  const rand = rng(seed);
  const gcEvery = shape.gcEvery ?? 7;
  const points: MemoryPoint[] = [];
  let gcCount = 0;
  let lastGc = 0;
  for (let t = 0; t <= seconds; t += STEP / 1000) {
    const live = shape.heap(t);
    // Garbage piles up between major GCs (the sawtooth); a GC drops heap used to the live size.
    while (t - lastGc >= gcEvery) {
      lastGc += gcEvery + (rand() - 0.5) * 2;
      gcCount++;
    }
    const garbage = Number.isFinite(gcEvery) ? ((t - lastGc) / gcEvery) * 25 : 0;
    const noise = (rand() - 0.5) * 1.5;
    const external = (shape.external ?? (() => 8))(t);
    const malloc = (shape.malloc ?? (() => 40))(t) + (rand() - 0.5) * 2;
    const v8Free = (shape.v8Free ?? (() => 20))(t);
    const mallocFree = (shape.mallocFree ?? (() => 10))(t);
    const heapUsed = live + garbage + noise;
    const rss = heapUsed + v8Free + malloc + mallocFree + 30;
    const p: MemoryPoint = { t: t * 1000, rss: rss * MiB, connections: Math.round((shape.connections ?? (() => 50))(t) + (rand() - 0.5) * 6) };
    if (!shape.rssOnly) {
      Object.assign(p, {
        heapUsed: heapUsed * MiB,
        external: (external + garbage * 0.2) * MiB,
        v8Used: heapUsed * MiB,
        v8Committed: (heapUsed + v8Free) * MiB,
        mallocInUse: malloc * MiB,
        mallocMmapped: 0,
        mallocFree: mallocFree * MiB,
        mallocFreeResident: mallocFree * MiB,
      });
      if (gcCount > 0) {
        Object.assign(p, {
          gcMajorCount: gcCount,
          gcAt: lastGc * 1000,
          gcHeapUsed: (shape.heap(lastGc) + (rand() - 0.5)) * MiB,
          gcExternal: external * MiB,
          gcMallocInUse: malloc * MiB,
        });
      }
    }
    points.push(p);
  }
  return points;
}

/** Seconds at which the detector first says growing (running it at every sample), or undefined. */
function firstFlag(points: MemoryPoint[], settings = DEFAULTS): number | undefined {
  for (let i = 1; i <= points.length; i++) {
    if (detectLeak(points.slice(0, i), settings).growing) {
      if (process.env.BATON_LEAK_TIMES) process.stdout.write(`flagged at ${points[i - 1]!.t / 1000} s\n`);
      return points[i - 1]!.t / 1000;
    }
  }
  return undefined;
}

const fastWarmUp = (t: number): number => 30 + 8 * (1 - Math.exp(-t / 20));
const slowWarmUp = (t: number): number => 30 + 15 * (1 - Math.exp(-t / 60));
const leak = (perMin: number) => (t: number): number => (perMin * t) / 60;

describe('detectLeak', () => {
  it('Theil–Sen ignores an outlier that least squares would follow', () => {
    expect(theilSen([0, 1, 2, 3, 4], [0, 1, 2, 3, 100])).toBeCloseTo(1);
  });

  it('takes the lowest value of each time bucket', () => {
    expect(minima([[0, 5], [1, 3], [2, undefined], [10, 7], [11, 6]], 10)).toEqual([[1, 3], [11, 6]]);
  });

  for (const [name, heap, seed] of [
    ['a fast warm-up', fastWarmUp, 1],
    ['a slow warm-up', slowWarmUp, 2],
    ['a fast warm-up, another seed', fastWarmUp, 3],
  ] as const) {
    it(`never flags a healthy app under steady load with ${name} in 15 minutes`, () => {
      expect(firstFlag(series({ heap }, 15 * 60, seed))).toBeUndefined();
    });
  }

  it('flags a 10 MiB/min per-request leak of V8 heap within 2 minutes, naming the heap', () => {
    const points = series({ heap: (t) => fastWarmUp(t) + leak(10)(t) }, 6 * 60);
    const at = firstFlag(points);
    expect(at).toBeDefined();
    expect(at!).toBeLessThanOrEqual(120);
    const finding = detectLeak(points, DEFAULTS);
    expect(finding.live.find((t) => t.figure === 'heap')).toMatchObject({ growing: true, basis: 'after-gc' });
    expect(finding.live.find((t) => t.figure === 'heap')!.slopePerMin / MiB).toBeCloseTo(10, 0);
    expect(finding.message).toMatch(/^growing: V8 heap after GC \+\d+\.\d MiB\/min over 6 min; .*malloc in use flat/);
  });

  it('flags an idle leak of external memory (no major GC at all) within 2 minutes', () => {
    const points = series({ heap: () => 30, gcEvery: Infinity, external: (t) => 8 + leak(10)(t), malloc: (t) => 40 + leak(10)(t) }, 4 * 60);
    const at = firstFlag(points);
    expect(at).toBeDefined();
    expect(at!).toBeLessThanOrEqual(120);
    const finding = detectLeak(points, DEFAULTS);
    expect(finding.live.filter((t) => t.growing).map((t) => t.figure).sort()).toEqual(['external', 'malloc']);
    expect(finding.live.find((t) => t.figure === 'heap')!.growing).toBe(false);
  });

  it('says when the heap was judged on bucket minima, not after-GC values', () => {
    // No major GC at all: heap used is all the detector has, and the finding must not call it "after GC".
    const finding = detectLeak(series({ heap: (t) => 30 + leak(10)(t), gcEvery: Infinity }, 4 * 60), DEFAULTS);
    expect(finding.live.find((t) => t.figure === 'heap')).toMatchObject({ growing: true, basis: 'minima' });
    expect(finding.message).toMatch(/^growing: V8 heap used \(lowest\) \+\d+\.\d MiB\/min/);
    expect(finding.message).not.toMatch(/after GC/);
  });

  it('does not flag heap minima while major GCs come but are too few to judge (old-space garbage is not a leak)', () => {
    // The e2e's time scale (1 s samples, 40 s window): heap used climbs 60 MiB/min of promoted
    // garbage; two major GCs, the second recent, found the live heap flat.
    const e2e: LeakSettings = { ...DEFAULTS, window: 40_000 };
    const points = (gcs: [number, number][]): MemoryPoint[] =>
      Array.from({ length: 31 }, (_, t) => {
        const done = gcs.filter(([at]) => at <= t);
        const last = done.at(-1);
        const p: MemoryPoint = { t: t * 1000, rss: 100 * MiB, heapUsed: (14 + t) * MiB, external: 8 * MiB, connections: 2 };
        if (last) Object.assign(p, { gcMajorCount: done.length, gcAt: last[0] * 1000, gcHeapUsed: last[1] * MiB, gcExternal: 8 * MiB });
        return p;
      });
    const recent = detectLeak(points([[1, 13], [27, 13.2]]), e2e);
    expect(recent.live.find((t) => t.figure === 'heap')).toMatchObject({ basis: 'minima', growing: false });
    expect(recent.growing).toBe(false);
    // No major GC for longer than half the shortest span: the minima are all there is, judged as before.
    const stale = detectLeak(points([[1, 13], [3, 13.2]]), e2e);
    expect(stale.live.find((t) => t.figure === 'heap')).toMatchObject({ basis: 'minima', growing: true });
  });

  it('shows committed-but-free V8 growth as held, never as a leak', () => {
    const points = series({ heap: fastWarmUp, v8Free: (t) => 20 + leak(15)(t) }, 15 * 60);
    expect(firstFlag(points)).toBeUndefined();
    const finding = detectLeak(points, DEFAULTS);
    expect(finding.committed.find((t) => t.figure === 'v8Free')!.growing).toBe(true);
    expect(finding.rss!.slopePerMin / MiB).toBeGreaterThan(10);
    expect(finding.message).toMatch(/V8 committed but free \+\d+\.\d MiB\/min \(held, not a leak\)/);
  });

  it('native fragmentation (free resident malloc memory growing, in use flat) is held, not a leak', () => {
    const points = series({ heap: fastWarmUp, mallocFree: (t) => 10 + leak(8)(t) }, 15 * 60);
    expect(firstFlag(points)).toBeUndefined();
    expect(detectLeak(points, DEFAULTS).committed.find((t) => t.figure === 'mallocFree')!.growing).toBe(true);
  });

  it('judges RSS alone for a program that reports no figures', () => {
    const points = series({ heap: () => 30, malloc: (t) => 40 + leak(10)(t), rssOnly: true }, 4 * 60);
    const at = firstFlag(points);
    expect(at).toBeLessThanOrEqual(120);
    expect(detectLeak(points, DEFAULTS).live.map((t) => t.figure)).toEqual(['rss']);
  });

  it('does not flag growth that follows a rising load', () => {
    const points = series({ heap: (t) => 30 + leak(10)(t), connections: (t) => 10 + t / 2 }, 6 * 60);
    expect(firstFlag(points)).toBeUndefined();
    expect(detectLeak(points, DEFAULTS).loadFlat).toBe(false);
  });

  it('clears once a leak stops', () => {
    const points = series({ heap: (t) => 30 + leak(10)(Math.min(t, 180)) }, 15 * 60);
    expect(firstFlag(points)).toBeLessThanOrEqual(120);
    expect(detectLeak(points, DEFAULTS).growing).toBe(false);
  });
});
