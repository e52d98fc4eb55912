// Counter handles: a generation's keeps its total in the handle and writes it through to its own
// slot; the supervisor's adds to what the cell holds, since a successor shares writer 0.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OVERFLOW_STAT, adoptSegment, createSegment, openSegment } from '../../../shared/stats/index.ts';
import { instanceName, recordingLogger, tempDir } from './helpers.ts';

afterEach(() => {
  vi.useRealTimers();
});

function valueOf(sample: ReturnType<ReturnType<typeof openSegment>['sample']>): number | undefined {
  return sample && sample.kind !== 'histogram' ? sample.value : undefined;
}

describe('counter handles', () => {
  it("a generation's counter writes every increment through: another mapping reads each at once, across rebases and beyond 2^31", () => {
    vi.useFakeTimers({ toFake: ['setInterval'] });
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    const reader = openSegment({ dir, instance });
    const gen = openSegment({ dir, instance, writer: 3 });
    const c = gen.counter('sole.c');
    for (let i = 1; i <= 5; i++) {
      c.inc();
      expect(valueOf(reader.sample('sole.c'))).toBe(i);
    }
    c.inc(2 ** 40);
    c.inc(1);
    vi.advanceTimersByTime(10_000); // the handle moves its increments into its base
    c.inc();
    c.inc(0.5);
    c.inc(-4);
    c.inc(Number.NaN);
    c.inc(0);
    expect(valueOf(reader.sample('sole.c'))).toBe(2 ** 40 + 7.5);
    for (let i = 0; i < 1000; i++) c.inc();
    vi.advanceTimersByTime(10_000);
    c.inc();
    expect(valueOf(reader.sample('sole.c'))).toBe(2 ** 40 + 1008.5);
    // Retired once the process is gone, as the supervisor does: the total carries on from retired.
    owner.retireWriter(3);
    openSegment({ dir, instance, writer: 3 }).counter('sole.c').inc();
    expect(valueOf(owner.sample('sole.c'))).toBe(2 ** 40 + 1009.5);
    owner.destroy();
  });

  it("the supervisor's counters add to what the cell holds: a successor that adopted the segment and its predecessor both count", () => {
    const dir = tempDir();
    const instance = instanceName();
    const predecessor = createSegment({ dir, instance });
    const before = predecessor.counter('baton.crashes');
    before.inc();
    const successor = adoptSegment({ dir, instance });
    const after = successor.counter('baton.crashes');
    after.inc();
    before.inc(); // the predecessor's generation crashed while the upgrade was under way
    after.inc(2);
    expect(valueOf(successor.sample('baton.crashes'))).toBe(5);
    successor.destroy();
  });

  it('an overflow counted beside a live handle of baton.stats.overflow is not overwritten by it', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance, maxNameLength: 64 });
    const gen = openSegment({ dir, instance, writer: 2, logger: recordingLogger() });
    const overflow = gen.counter(OVERFLOW_STAT);
    overflow.inc();
    gen.counter(`x${'y'.repeat(70)}`).inc(); // over maxNameLength: counted as an overflow
    overflow.inc();
    expect(valueOf(owner.sample(OVERFLOW_STAT))).toBe(3);
    owner.destroy();
  });
});
