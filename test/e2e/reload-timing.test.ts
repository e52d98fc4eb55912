/**
 * A reload says where its time went (issue #19): POST /reload's result and the supervisor's log
 * record of the promotion carry `timing`, marks on the monotonic clock from the supervisor and,
 * with the SDK, from the generation itself, in the order a reload passes them. A program without
 * the SDK has the supervisor's marks only. A generation's made-up marks are dropped, not trusted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { childTiming, monotonicMs, type ReloadTiming } from '../../shared/reload-timing.ts';
import { BatonProcess, cleanupAll, fixture, httpConfig, ROOT } from '../helpers/baton.ts';
import path from 'node:path';

afterEach(cleanupAll);

/** Each mark at or after the one before it. */
function expectOrdered(marks: (number | undefined)[]): void {
  const present = marks.filter((m): m is number => m !== undefined);
  for (let i = 1; i < present.length; i++) expect(present[i]!, `mark ${i} of ${JSON.stringify(present)}`).toBeGreaterThanOrEqual(present[i - 1]!);
}

describe('reload timing', () => {
  it('an SDK generation: every mark, supervisor and child, in order, in the reply and in the log', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await b.active(1);
    const before = monotonicMs();
    const reply = await b.reload();
    const after = monotonicMs();
    expect(reply.body.ok).toBe(true);
    const t = (reply.body as { timing?: ReloadTiming }).timing;
    expect(t).toBeDefined();
    const c = t!.child!;
    expect(c).toBeDefined();
    // The child's clock starts while spawn() has yet to return in the supervisor, so its first mark
    // follows `spawning`, not necessarily `spawned`.
    expectOrdered([before, t!.received, t!.configRead, t!.spawning, t!.spawned, t!.readyReceived, t!.promoted, t!.drainSent, after]);
    expectOrdered([t!.spawning, c.start, c.booted, c.listenCalled, c.listening, c.readySent, t!.readyReceived]);
    // The log record of the promotion carries the same marks (a SIGHUP's reload has no reply).
    const record = await b.waitForLog((l) => l.generation === 2 && typeof l.timing === 'object');
    expect(record.timing).toEqual(t);

    process.kill(b.pid, 'SIGHUP');
    const hup = await b.waitForLog((l) => l.generation === 3 && typeof l.timing === 'object');
    const h = hup.timing as ReloadTiming;
    expectOrdered([h.received, h.configRead, h.spawning, h.spawned, h.readyReceived, h.promoted, h.drainSent]);
    expectOrdered([h.spawning, h.child?.start, h.child?.readySent, h.readyReceived]);
    expect(h.received).toBeGreaterThan(after);
    // The first generation was not reloaded: no request, no config re-read.
    const first = await b.waitForLog((l) => l.generation === 1 && typeof l.timing === 'object');
    expect((first.timing as ReloadTiming).received).toBeUndefined();
  });

  it('a program without the SDK: the supervisor’s marks only', async () => {
    const b = new BatonProcess(httpConfig([process.execPath, path.join(ROOT, 'examples/plain-server.js')], { preload: 'off' }));
    await b.active(1);
    const reply = await b.reload();
    const t = (reply.body as { timing?: ReloadTiming }).timing!;
    expect(t.child).toBeUndefined();
    expectOrdered([t.received, t.configRead, t.spawning, t.spawned, t.readyReceived, t.promoted, t.drainSent]);
  });

  it('childTiming keeps finite numbers of the known marks, and nothing without start, booted and readySent', () => {
    expect(childTiming({ start: 1, booted: 2, readySent: 3, listening: 'x', extra: 5, listenCalled: Number.NaN })).toEqual({ start: 1, booted: 2, readySent: 3 });
    expect(childTiming({ start: 1, booted: 2 })).toBeUndefined();
    expect(childTiming('1,2,3')).toBeUndefined();
    expect(childTiming(null)).toBeUndefined();
  });
});
