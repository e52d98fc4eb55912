import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { announce, EventBus } from '../../../supervisor/core/events.ts';

describe('announce', () => {
  it("logs the event's fields with its type as `event`, its process as childPid (the record's pid stays the supervisor's), and publishes it", () => {
    const records: Record<string, unknown>[] = [];
    const log = pino({ base: { pid: process.pid } }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
    const bus = new EventBus(() => 5);
    announce(bus, log, 'warn', { type: 'worker-restarted', generation: 3, worker: 1, pid: 4242 }, 'generation 3 worker 1 restarted', { extra: true });
    expect(records).toEqual([expect.objectContaining({ level: 40, pid: process.pid, event: 'worker-restarted', generation: 3, worker: 1, childPid: 4242, extra: true, msg: 'generation 3 worker 1 restarted' })]);
    expect(bus.after(0)).toEqual([{ type: 'worker-restarted', generation: 3, worker: 1, pid: 4242, seq: 1, time: 5 }]);
  });
});
