// A segment written over or cut short by another process, read in this one: the SIGBUS guard,
// bounds-checked entries, the generation table, a seqlock stuck odd, damaged header counts.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { busFaults } from '../../../shared/native/native.ts';
import { computeLayout, createSegment, openSegment, segmentPath } from '../../../shared/stats/index.ts';
import { E, ENTRY_BYTES, GENERATION_TABLE_OFFSET, H } from '../../../shared/stats/layout.ts';
import { instanceName, recordingLogger, tempDir } from './helpers.ts';

const LAYOUT = computeLayout();

function poke(file: string, offset: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, b, 0, 4, offset);
  fs.closeSync(fd);
}

describe('a damaged segment', () => {
  it('cut short: accesses past the cut read zeros instead of SIGBUS, and the owner sets the size back', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    const counter = owner.counter('cut.counter');
    counter.inc(5);
    const file = segmentPath(dir, instance, 0);
    const faults = busFaults();
    fs.truncateSync(file, 4096);
    counter.inc(); // the values area is past the cut: this would be SIGBUS
    expect(busFaults()).toBeGreaterThan(faults);
    expect(owner.checkSizes()).toEqual([{ segment: 0, file, size: 4096, expected: LAYOUT.segmentBytes }]);
    expect(fs.statSync(file).size).toBe(LAYOUT.segmentBytes);
    expect(owner.checkSizes()).toEqual([]);
    owner.destroy();
  });

  it('skips a table entry whose offsets leave the arena, naming the entry and its byte offset', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    owner.counter('good.before').inc(1);
    owner.counter('bad').inc(2);
    owner.counter('good.after').inc(3);
    const file = segmentPath(dir, instance, 0);
    // Entry 0 is baton.stats.overflow, 1 good.before, 2 bad.
    const entry = LAYOUT.tableOffset + 2 * ENTRY_BYTES;
    poke(file, entry + 4 * E.keyOffset, LAYOUT.arenaBytes - 2);
    const logger = recordingLogger();
    const reader = openSegment({ dir, instance, logger });
    expect(reader.snapshot(/^good/).map((s) => s.name)).toEqual(['good.before', 'good.after']);
    expect(logger.warns).toEqual([expect.stringContaining(`skipped segment 0 entry 2 (byte offset ${entry})`)]);
    expect(logger.warns[0]).toContain('outside the');
    // A cell index out of range, and a key that is not one, are caught the same way.
    poke(file, entry + 4 * E.keyOffset, 0);
    poke(file, LAYOUT.tableOffset + 3 * ENTRY_BYTES + 4 * E.cell, LAYOUT.cellsPerSegment);
    const again = recordingLogger();
    expect(openSegment({ dir, instance, logger: again }).snapshot(/^good/).map((s) => s.name)).toEqual(['good.before']);
    expect(again.warns).toEqual([expect.stringContaining('entry 2'), expect.stringContaining('entry 3')]);
    owner.destroy();
  });

  it('skips generation-table entries that cannot be real', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    owner.setGeneration(0, { number: 1, pid: process.pid, state: 'active', startedAt: 1, writer: 1 });
    owner.setGeneration(1, { number: 2, pid: process.pid, state: 'starting', startedAt: 1, writer: 2 });
    const file = segmentPath(dir, instance, 0);
    poke(file, GENERATION_TABLE_OFFSET + 32 + 24, 99_999); // slot 1's writer
    poke(file, GENERATION_TABLE_OFFSET + 2 * 32 + 20, 77); // slot 2's state code
    const logger = recordingLogger();
    const reader = openSegment({ dir, instance, logger });
    expect(reader.generations().map((g) => g.slot)).toEqual([0]);
    expect(logger.warns).toEqual([expect.stringContaining('slot 1 (offset 288): writer 99999'), expect.stringContaining('slot 2 (offset 320): state code 77')]);
    // The owner's writer allocation does not trip over them either.
    expect(owner.allocateWriter()).toBe(2);
    owner.destroy();
  });

  it('a seqlock stuck odd: readers give up within a bounded time, the owner mends it', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    owner.counter('seq.counter').inc(4);
    const file = segmentPath(dir, instance, 0);
    poke(file, 4 * H.seq, 1001);
    const logger = recordingLogger();
    const reader = openSegment({ dir, instance, logger });
    const started = performance.now();
    expect(reader.sample('seq.counter')).toMatchObject({ value: 4 });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(logger.warns).toEqual([expect.stringContaining('stayed at 1001')]);
    expect(owner.sample('seq.counter')).toMatchObject({ value: 4 });
    expect(fs.readFileSync(file).readInt32LE(4 * H.seq) % 2).toBe(0);
    owner.destroy();
  });

  it('damaged header counts: a registration is skipped as an overflow, not thrown', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    poke(segmentPath(dir, instance, 0), 4 * H.arenaUsed, -64);
    const logger = recordingLogger();
    const writer = openSegment({ dir, instance, writer: 1, logger });
    writer.counter('after.damage').inc();
    expect(writer.sample('after.damage')).toBeUndefined();
    expect(logger.warns).toEqual([expect.stringContaining('segment 0 of ' + instance + ' is damaged (stats 1, arena bytes -64')]);
    owner.destroy();
  });
});
