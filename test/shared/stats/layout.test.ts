import { describe, expect, it } from 'vitest';
import { CELL_BYTES, PAGE_BYTES, STATS_ERR, computeLayout, hotRestartVersion } from '../../../shared/stats/layout.ts';

describe('stats layout', () => {
  it('names the layout version and every capacity in the hot-restart version', () => {
    expect(hotRestartVersion()).toBe('baton.2.w16.g16.s4096.c16384.a262144.cell8');
    const changed = [
      { writers: 8 },
      { generations: 8 },
      { statsPerSegment: 100 },
      { cellsPerSegment: 100 },
      { arenaBytes: 4096 },
    ].map((c) => hotRestartVersion(c));
    expect(new Set([hotRestartVersion(), ...changed]).size).toBe(6);
    expect(hotRestartVersion({ writers: 4, arenaBytes: 4096 })).toBe('baton.2.w4.g16.s4096.c16384.a4096.cell8');
  });

  it('aligns the parts: page-sized segments, 64-byte writer regions that do not overlap', () => {
    for (const capacities of [{}, { writers: 3, cellsPerSegment: 5, arenaBytes: 100, statsPerSegment: 3, generations: 1 }]) {
      const l = computeLayout(capacities);
      expect(l.segmentBytes % PAGE_BYTES).toBe(0);
      expect(l.valuesOffset % 64).toBe(0);
      expect((l.regionCells * CELL_BYTES) % 64).toBe(0);
      expect(l.regionCells).toBeGreaterThanOrEqual(l.cellsPerSegment);
      expect(l.arenaOffset).toBe(l.tableOffset + l.statsPerSegment * 32);
      expect(l.valuesOffset).toBeGreaterThanOrEqual(l.arenaOffset + l.arenaBytes);
      expect(l.valuesOffset + (l.writers + 1) * l.regionCells * CELL_BYTES).toBeLessThanOrEqual(l.segmentBytes);
    }
  });

  it('refuses capacities that are not integers in range', () => {
    for (const bad of [{ writers: 1 }, { writers: 2.5 }, { generations: 0 }, { statsPerSegment: -1 }, { arenaBytes: 10 }]) {
      expect(() => computeLayout(bad)).toThrow(expect.objectContaining({ code: STATS_ERR.invalid, message: expect.stringContaining(Object.keys(bad)[0]!) }));
    }
  });
});
