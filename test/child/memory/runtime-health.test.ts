// The event-loop delay timer runs only while the loop works: an idle generation pays no wake-ups.
import { execa } from 'execa';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS, ROOT } from '../../helpers/baton.ts';

interface Interval {
  loopDelayP99: number;
  loopDelayMax: number;
  measuringAfter: boolean;
}

describe('RuntimeWatch', () => {
  it('turns the delay timer off after an idle interval (reporting 0), and on again when the loop works (-1 for that interval, measured after)', async () => {
    const { stdout } = await execa(process.execPath, [...NODE_FLAGS, path.join(ROOT, 'test/fixtures/runtime-idle.ts')]);
    const [first, idle, busy, measured] = JSON.parse(stdout) as Interval[];
    // Measured while idle: nothing was late, and the timer goes off for the next interval.
    expect(first).toMatchObject({ measuringAfter: false });
    expect(first!.loopDelayMax).toBeGreaterThanOrEqual(0);
    expect(idle).toMatchObject({ loopDelayP99: 0, loopDelayMax: 0, measuringAfter: false });
    // 120 ms of work with the timer off: unknown, and the timer comes back.
    expect(busy).toMatchObject({ loopDelayP99: -1, loopDelayMax: -1, measuringAfter: true });
    // A 60 ms block under the timer (period 20 ms) shows as a late tick.
    expect(measured!.loopDelayMax).toBeGreaterThan(20);
    expect(measured!.measuringAfter).toBe(true);
  });
});
