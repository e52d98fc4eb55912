import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { EventBus, type PublishedEvent } from '../../../supervisor/core/events.ts';
import { Canary, type CanaryGeneration } from '../../../supervisor/canary/canary.ts';
import type { Outgoing, ReplyBody, SupervisorMessage } from '../../../shared/protocol.ts';
import type { StatSample } from '../../../shared/stats/index.ts';

const log = pino({ level: 'silent' });

class FakeGeneration implements CanaryGeneration {
  state = 'active';
  startedAt = 0;
  connections: number | null = 0;
  readonly sent: string[] = [];
  readonly drained: string[] = [];
  readonly id: number;
  readonly sdk: boolean;
  constructor(id: number, sdk = true) {
    this.id = id;
    this.sdk = sdk;
  }
  get pid(): number {
    return 1000 + this.id;
  }
  request(body: Outgoing<SupervisorMessage>): Promise<ReplyBody> {
    this.sent.push(String(body.type));
    return Promise.resolve({ ok: true, cut: 2 });
  }
  drain(reason: string): void {
    this.state = 'draining';
    this.drained.push(reason);
  }
  kill(): void {
    this.state = 'exited';
  }
}

/** Timers run when `advance` passes them; stats are whatever `samples` holds. */
function setup() {
  let now = 0;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 1;
  const samples: StatSample[] = [];
  const generations: FakeGeneration[] = [];
  const events: string[] = [];
  let active: CanaryGeneration | undefined;
  const bus = new EventBus(() => now);
  const rss = new Map<number, number>();
  const published: PublishedEvent[] = [];
  bus.on('event', (e) => published.push(e));
  const canary = new Canary({
    os: {
      now: () => now,
      setTimeout: (fn, ms) => {
        const t = { at: now + ms, fn, id: nextId++ };
        timers.push(t);
        return t.id;
      },
      clearTimeout: (id: unknown) => {
        const i = timers.findIndex((t) => t.id === id);
        if (i >= 0) timers.splice(i, 1);
      },
    },
    log,
    events: bus,
    snapshot: () => samples,
    rolledBack: () => events.push('rolled back'),
    status: (text) => events.push(`STATUS=${text}`),
    activate: (g) => (active = g),
    live: () => generations.filter((g) => g.state !== 'exited'),
    rss: (g) => rss.get(g.id),
  });
  const advance = async (ms: number): Promise<void> => {
    const end = now + ms;
    for (;;) {
      timers.sort((a, b) => a.at - b.at);
      const t = timers[0];
      if (!t || t.at > end) break;
      timers.shift();
      now = t.at;
      t.fn();
      await new Promise((r) => setImmediate(r));
    }
    now = end;
  };
  const answered = (generation: number, code: '2xx' | '5xx', n: number): void => {
    const labels = { generation: String(generation), code_class: code };
    const found = samples.find((s) => s.kind === 'counter' && s.labels.generation === labels.generation && s.labels.code_class === code);
    if (found && found.kind === 'counter') found.value += n;
    else samples.push({ name: 'baton.http.requests', kind: 'counter', labels, value: n });
  };
  const gen = (id: number, sdk = true): FakeGeneration => {
    const g = new FakeGeneration(id, sdk);
    generations.push(g);
    return g;
  };
  return { canary, advance, answered, gen, events, published, rss, active: () => active };
}

const options = { canary: { window: 3000, maxErrorRate: 0.01, maxP99Ratio: 2, p99Floor: 5, minRequests: 100 }, maxDraining: 3, shutdownTimeout: 1000 };

describe('Canary', () => {
  it('parks the previous generation, rolls back on a 5xx breach: the previous one unparks, then the new one drains', async () => {
    const s = setup();
    const old = s.gen(1);
    const next = s.gen(2);
    let restored = 0;
    s.canary.afterPromote(next, [old], { ...options, restore: () => restored++ });
    expect(old.sent).toEqual(['park']);
    expect(old.state).toBe('active');
    s.answered(2, '2xx', 80);
    s.answered(2, '5xx', 20);
    await s.advance(300);
    expect(s.active()).toBe(old);
    expect(restored).toBe(1);
    expect(old.sent).toEqual(['park', 'unpark']);
    expect(next.drained).toEqual(['rolled back: 5xx 20% > 1% over 100 requests']);
    expect(s.published.map(({ seq: _, time: __, ...e }) => e)).toEqual([
      { type: 'canary-open', generation: 2, parked: [1], windowMs: 3000 },
      { type: 'canary-rollback', generation: 2, restored: 1, reason: 'rolled back: 5xx 20% > 1% over 100 requests' },
    ]);
    expect(s.events).toContain('rolled back');
    expect(await s.canary.outcome(2)).toEqual({ generation: 2, result: 'rolled-back', reason: 'rolled back: 5xx 20% > 1% over 100 requests', previous: [1] });
  });

  it('drains the previous generation after a clean window', async () => {
    const s = setup();
    const old = s.gen(1);
    const next = s.gen(2);
    s.canary.afterPromote(next, [old], options);
    s.answered(2, '2xx', 500);
    await s.advance(2900);
    expect(old.state).toBe('active');
    await s.advance(400);
    expect(old.drained[0]).toMatch(/^replaced by generation 2 \(canary: 5xx 0%/);
    expect((await s.canary.outcome(2))?.result).toBe('promoted');
    expect(s.canary.status()).toEqual({});
  });

  it('rolls back when the new generation exits during the window, activating the old one at once', async () => {
    const s = setup();
    const old = s.gen(1);
    const next = s.gen(2);
    s.canary.afterPromote(next, [old], options);
    next.state = 'exited';
    s.canary.exited(next, 'was killed by SIGKILL');
    expect(s.active()).toBe(old);
    expect((await s.canary.outcome(2))?.reason).toBe('rolled back: generation 2 was killed by SIGKILL during its canary window');
  });

  it('answers manual promote and rollback, and refuses both with no window open', async () => {
    const s = setup();
    const old = s.gen(1);
    const next = s.gen(2);
    expect(() => s.canary.requestPromote()).toThrow(expect.objectContaining({ code: 'ERR_NO_CANARY' }));
    s.canary.afterPromote(next, [old], options);
    expect(s.canary.status().canary).toMatchObject({ generation: 2, parked: [1] });
    expect(s.canary.requestRollback().result).toBe('rolled-back');
    expect(() => s.canary.requestRollback()).toThrow(expect.objectContaining({ code: 'ERR_NO_CANARY' }));
  });

  it('hurries the oldest draining generation when a reload would exceed max-draining, and kills it at the shutdown timeout', async () => {
    const s = setup();
    const gens = [1, 2, 3, 4, 5].map((id) => s.gen(id));
    const noCanary = { maxDraining: 2, shutdownTimeout: 1000 };
    for (let i = 1; i < gens.length; i++) s.canary.afterPromote(gens[i]!, [gens[i - 1]!], noCanary);
    // 1 and 2 drained; 3's drain would make three: 1 hurried; 4's: 2 hurried.
    expect(gens[0]!.sent).toEqual(['hurry']);
    expect(gens[1]!.sent).toEqual(['hurry']);
    expect(gens[2]!.sent).toEqual([]);
    await s.advance(1000);
    expect(gens[0]!.state).toBe('exited');
    expect(gens[1]!.state).toBe('exited');
    expect(gens.filter((g) => g.state === 'draining').length).toBe(2);
  });

  it('hurries the oldest draining generations when the draining ones would hold more RSS than draining-memory-budget', async () => {
    const s = setup();
    const MiB = 1024 * 1024;
    const gens = [1, 2, 3, 4].map((id) => s.gen(id));
    for (const [id, mib] of [[1, 100], [2, 100], [3, 150], [4, 80]] as const) s.rss.set(id, mib * MiB);
    const budgeted = { maxDraining: 10, drainingMemoryBudget: 300 * MiB, shutdownTimeout: 1000 };
    s.canary.afterPromote(gens[1]!, [gens[0]!], budgeted);
    s.canary.afterPromote(gens[2]!, [gens[1]!], budgeted);
    // 1 and 2 drain with 200 MiB; 3's 150 would make 350: 1 is hurried (250 left).
    expect(gens.map((g) => g.sent)).toEqual([[], [], [], []]);
    s.canary.afterPromote(gens[3]!, [gens[2]!], budgeted);
    expect(gens.map((g) => g.sent)).toEqual([['hurry'], [], [], []]);
    // The cut is counted once the generation answers its hurry.
    await new Promise((r) => setImmediate(r));
    expect(s.published.filter((e) => e.type === 'drain-hurried')).toEqual([
      expect.objectContaining({ generation: 1, cut: 2, why: 'the draining generations would hold 350.0 MiB of RSS, over draining-memory-budget 300.0 MiB' }),
    ]);
    await s.advance(1000);
    expect(gens[0]!.state).toBe('exited');
    expect(gens.filter((g) => g.state === 'draining').map((g) => g.id)).toEqual([2, 3]);
  });

  it('lets a program without the SDK keep accepting during the window (it cannot be parked)', () => {
    const s = setup();
    const old = s.gen(1, false);
    s.canary.afterPromote(s.gen(2), [old], options);
    expect(old.sent).toEqual([]);
    expect(s.canary.status().canary?.parked).toEqual([1]);
  });
});
