// The reporter's measuring GC: when V8 has run no major GC for a while and the heap grew, the
// reporter runs one and reads the live figures right after it, so the leak watch fits what is
// live instead of live plus old-space garbage.
import { describe, expect, it } from 'vitest';
import { measureDue } from '../../../child/memory/memory-reporter.ts';
import { RuntimeWatch } from '../../../child/memory/runtime-health.ts';

const MiB = 1024 * 1024;

describe('measureDue', () => {
  const last = { at: 10_000, heapUsed: 40 * MiB };
  it('waits for the interval since the last major GC (or since start)', () => {
    expect(measureDue(14_999, last, 0, 80 * MiB, 5000)).toBe(false);
    expect(measureDue(15_000, last, 0, 80 * MiB, 5000)).toBe(true);
    expect(measureDue(4999, undefined, 0, 80 * MiB, 5000)).toBe(false);
    expect(measureDue(5000, undefined, 0, 10 * MiB, 5000)).toBe(true);
  });
  it('only when the heap grew by max(1 MiB, 5 %) since that GC', () => {
    expect(measureDue(60_000, last, 0, 41.9 * MiB, 5000)).toBe(false);
    expect(measureDue(60_000, last, 0, 42 * MiB, 5000)).toBe(true);
    expect(measureDue(60_000, { at: 0, heapUsed: 4 * MiB }, 0, 4.9 * MiB, 5000)).toBe(false);
    expect(measureDue(60_000, { at: 0, heapUsed: 4 * MiB }, 0, 5 * MiB, 5000)).toBe(true);
  });
  it('never with an infinite interval (BATON_MEMORY_MEASURE_GC=off)', () => {
    expect(measureDue(1e12, undefined, 0, 1e9, Infinity)).toBe(false);
  });
});

describe('RuntimeWatch.measure', () => {
  it('reads the heap right after a real full GC, below what garbage held before, and counts it once', async () => {
    const watch = new RuntimeWatch(() => -1);
    try {
      const before = watch.afterGc?.count ?? 0;
      let garbage: string[] | undefined = Array.from({ length: 20_000 }, (_, i) => `garbage-${i}`.padEnd(200, String(i % 10)).slice(1));
      const withGarbage = process.memoryUsage().heapUsed;
      garbage.length = 0;
      garbage = undefined;
      watch.measure();
      const after = watch.afterGc!;
      expect(after.count).toBe(before + 1);
      expect(after.heapUsed).toBeLessThan(withGarbage - 2 * MiB);
      expect(Math.abs(after.at - Date.now())).toBeLessThan(1000);
      // The observer's entry for that same GC arrives a task later: it must not count it again.
      await new Promise((r) => setTimeout(r, 100));
      expect(watch.afterGc!.count).toBe(before + 1);
    } finally {
      watch.stop();
    }
  });
});
