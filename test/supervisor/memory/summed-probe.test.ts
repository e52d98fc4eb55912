// The probe the supervisor hands its memory monitor sums a generation's workers; it must keep the
// cheap statm `rss` read too, or the monitor silently has no limit watch between samples (it did
// not: a fast leak was met only at the next 5 s sample, up to 95 % over the hard limit).
import { describe, expect, it } from 'vitest';
import { summedOverWorkers } from '../../../supervisor/core/supervisor-queries.ts';
import type { Generation } from '../../../supervisor/core/generation.ts';
import type { MemoryProbe, ProcMemory } from '../../../supervisor/memory/proc.ts';

const MiB = 1024 * 1024;
const rssOf = new Map([
  [10, 100 * MiB],
  [20, 30 * MiB],
  [21, 40 * MiB],
  [22, 50 * MiB],
]);
const probe: MemoryProbe = {
  read: (pid): ProcMemory | undefined => (rssOf.has(pid) ? { rss: rssOf.get(pid)!, pss: 0, privateDirty: 0, anonymous: 0, swap: 0 } : undefined),
  rss: (pid) => rssOf.get(pid),
};
const generations = [
  { pid: 10, size: 1, workers: [{ pid: 10, state: 'active' }] },
  { pid: 20, size: 3, workers: [{ pid: 20, state: 'active' }, { pid: 21, state: 'active' }, { pid: 22, state: 'exited' }] },
] as unknown as Generation[];

describe('summedOverWorkers', () => {
  it('keeps the rss read, summed over the live workers', () => {
    const summed = summedOverWorkers(probe, () => generations);
    expect(summed.rss).toBeTypeOf('function');
    expect(summed.rss!(10)).toBe(100 * MiB);
    expect(summed.rss!(20)).toBe(70 * MiB);
    expect(summed.read(20)?.rss).toBe(70 * MiB);
    expect(summed.rss!(99)).toBeUndefined();
  });

  it('has no rss read when the probe has none (the monitor then runs no limit watch)', () => {
    expect(summedOverWorkers({ read: probe.read }, () => generations).rss).toBeUndefined();
  });
});
