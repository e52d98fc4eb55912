import { describe, expect, it } from 'vitest';
import { fragmentation, gaugeName, largestFreeFromMallocInfo } from '../../../shared/memory-figures.ts';
import { validateConfig, type MemoryConfig } from '../../../supervisor/config/config.ts';
import { Worker as Generation } from '../../../supervisor/core/worker.ts';
import { leastSquares, MemorySeries } from '../../../supervisor/memory/history.ts';
import { MemoryMonitor, type MemoryActions, type WatchedGeneration } from '../../../supervisor/memory/monitor.ts';
import { parseSmapsRollup, type ProcMemory } from '../../../supervisor/memory/proc.ts';
import type { ReplyBody } from '../../../shared/protocol.ts';
import { FakeOs, flush, observe, silentLog } from '../os/fake-os.ts';
import { EventBus, type PublishedEvent } from '../../../supervisor/core/events.ts';
import { handleControl, type ControlTarget } from '../../../supervisor/control/api.ts';

const MiB = 1024 * 1024;

describe('memory figures', () => {
  it('parses smaps_rollup into bytes', () => {
    const text = [
      '55d0c0a00000-7ffd1c3fe000 ---p 00000000 00:00 0                          [rollup]',
      'Rss:               51200 kB',
      'Pss:               40960 kB',
      'Pss_Anon:          30000 kB',
      'Private_Dirty:     30720 kB',
      'Anonymous:         29696 kB',
      'Swap:                  4 kB',
    ].join('\n');
    expect(parseSmapsRollup(text)).toEqual({ rss: 50 * MiB, pss: 40 * MiB, privateDirty: 30 * MiB, anonymous: 29 * MiB, swap: 4096 });
  });

  it('finds the largest non-empty free bin in malloc_info', () => {
    const xml = `<malloc version="1"><heap nr="0"><sizes>
      <size from="17" to="32" total="64" count="2"/>
      <size from="1009" to="1024" total="0" count="0"/>
      <size from="65537" to="131072" total="70000" count="1"/>
      <unsorted from="0" to="0" total="0" count="0"/></sizes></heap></malloc>`;
    expect(largestFreeFromMallocInfo(xml)).toBe(70000);
    expect(largestFreeFromMallocInfo('<malloc/>')).toBe(-1);
  });

  it('derives the fragmentation ratios, null where unknown', () => {
    expect(fragmentation({ v8Used: 30, v8Committed: 40, mallocFree: 50, mallocArena: 200, mallocLargestFree: 10 })).toEqual({
      v8: 0.25,
      malloc: 0.25,
      mallocScatter: 0.8,
    });
    expect(fragmentation({ mallocFree: -1, mallocArena: -1 })).toEqual({ v8: null, malloc: null, mallocScatter: null });
  });

  it('names gauges in snake case under baton.memory.', () => {
    expect(gaugeName('heapUsed')).toBe('baton.memory.heap_used');
    expect(gaugeName('mallocLargestFree')).toBe('baton.memory.malloc_largest_free');
  });
});

describe('MemorySeries', () => {
  it('keeps a bounded ring, oldest first, and summarizes the window with a slope per minute', () => {
    const s = new MemorySeries(1, 100, 5);
    for (let i = 0; i < 8; i++) s.push({ t: i * 60_000, rss: 100 * MiB + i * 2 * MiB });
    expect(s.points().map((p) => p.t / 60_000)).toEqual([3, 4, 5, 6, 7]);
    const sum = s.summary('rss', 2 * 60_000)!;
    expect(sum.now).toBe(114 * MiB);
    expect(sum.min).toBe(110 * MiB);
    expect(sum.max).toBe(114 * MiB);
    expect(sum.slopePerMin).toBeCloseTo(2 * MiB);
    expect(sum.r2).toBeCloseTo(1);
  });

  it('least squares: flat data has slope 0', () => {
    expect(leastSquares([1, 2, 3], [5, 5, 5])).toEqual({ slope: 0, r2: 0 });
  });
});

const CONFIG: MemoryConfig = {
  interval: 1000,
  window: 10_000,
  history: 60_000,
  replaceCooldown: 30_000,
  growth: { minSlope: MiB, minGrowth: 4 * MiB, minR2: 0.8, loadTolerance: 0.5 },
  allocator: 'default',
};

function monitor(config: Partial<MemoryConfig> = {}) {
  const os = new FakeOs();
  const rss = new Map<number, number>();
  const gens: WatchedGeneration[] = [{ id: 1, pid: 11, state: 'active', connections: 5, sdk: true }];
  const calls: string[] = [];
  const bus = new EventBus(() => os.now());
  const events: PublishedEvent[] = [];
  bus.on('event', (e) => events.push(e));
  let nextGen = 2;
  const actions: MemoryActions = {
    live: () => gens,
    snapshot: () => [],
    release: (id): Promise<ReplyBody> => {
      calls.push(`release ${id}`);
      return Promise.resolve({ ok: true, released: 10 * MiB, rssBefore: 400 * MiB, rssAfter: 390 * MiB });
    },
    replace: (reason) => {
      calls.push(`replace: ${reason}`);
      const id = nextGen++;
      gens[0] = { ...gens[0]!, state: 'draining' };
      gens.unshift({ id, pid: 10 + id, state: 'active', connections: 5, sdk: true });
      return Promise.resolve(id);
    },
  };
  const probe = { read: (pid: number): ProcMemory | undefined => ({ rss: rss.get(pid) ?? 50 * MiB, pss: 0, privateDirty: 0, anonymous: 0, swap: 0 }) };
  const m = new MemoryMonitor({ ...CONFIG, ...config }, os, probe, actions, silentLog, bus);
  m.start();
  /** The events published, without their number and time. */
  const seen = () => events.map(({ seq: _, time: __, ...e }) => e);
  return { os, m, rss, gens, calls, seen };
}

describe('MemoryMonitor', () => {
  it('flags a generation growing steadily under flat load, once, and clears it when it stops', async () => {
    const { os, m, rss, seen } = monitor();
    for (let i = 0; i < 12; i++) {
      rss.set(11, 100 * MiB + i * MiB); // 1 MiB per second = 60 MiB/min
      await os.advance(1000);
    }
    expect(m.flag(1)).toMatchObject({ growing: true });
    expect(m.flag(1)!.slopeMiBPerMin).toBeCloseTo(60, 0);
    // A program that reports no figures of its own is judged by RSS.
    const growing = seen().filter((e) => e.type === 'memory-growing');
    expect(growing).toEqual([expect.objectContaining({ generation: 1, figure: 'rss', figures: ['rss'], message: expect.stringMatching(/^growing: /) })]);
    expect(growing[0]!.type === 'memory-growing' && growing[0]!.slopeMiBPerMin).toBeCloseTo(60, 0);
    for (let i = 0; i < 12; i++) await os.advance(1000); // rss stays put
    expect(m.flag(1)).toMatchObject({ growing: false });
    expect(seen().filter((e) => e.type === 'memory-steady')).toEqual([{ type: 'memory-steady', generation: 1, message: expect.any(String) }]);
    expect(seen().filter((e) => e.type === 'memory-growing')).toHaveLength(1);
  });

  it('does not flag growth that follows the load', async () => {
    const { os, m, rss, gens } = monitor();
    for (let i = 0; i < 12; i++) {
      rss.set(11, 100 * MiB + i * MiB);
      gens[0] = { ...gens[0]!, connections: 5 + i * 10 };
      await os.advance(1000);
    }
    expect(m.flag(1)).toMatchObject({ growing: false });
  });

  it('asks a generation over the soft limit to release memory, at most once per window', async () => {
    const { os, rss, calls, seen } = monitor({ softLimit: { rss: 300 * MiB } });
    rss.set(11, 400 * MiB);
    for (let i = 0; i < 5; i++) await os.advance(1000);
    expect(calls).toEqual(['release 1']);
    expect(seen()).toEqual([
      { type: 'memory-limit', generation: 1, limit: 'soft', figure: 'rss', bytes: 400 * MiB, limitBytes: 300 * MiB, why: 'RSS 400 MiB > 300 MiB' },
      { type: 'memory-released', generation: 1, released: 10 * MiB, rssBefore: 400 * MiB, rssAfter: 390 * MiB, trimmed: false },
    ]);
    await os.advance(10_000);
    expect(calls).toEqual(['release 1', 'release 1']);
  });

  it('replaces the active generation over the hard limit, then refuses to loop on a release born over it', async () => {
    const { os, rss, calls, seen } = monitor({ hardLimit: { rss: 500 * MiB } });
    rss.set(11, 600 * MiB);
    rss.set(12, 600 * MiB); // the replacement is over the limit too
    await os.advance(1000);
    expect(calls).toEqual(['replace: generation 1 over the memory hard limit']);
    for (let i = 0; i < 10; i++) await os.advance(1000);
    expect(calls).toHaveLength(1);
    const crossed = { figure: 'rss', bytes: 600 * MiB, limitBytes: 500 * MiB, why: 'RSS 600 MiB > 500 MiB' };
    // Told once, however many rounds it stays over.
    expect(seen()).toEqual([
      { type: 'memory-limit', generation: 1, limit: 'hard', ...crossed },
      { type: 'memory-replaced', generation: 1, replacement: 2 },
      { type: 'memory-cooldown', generation: 2, sinceReplaceMs: 1000, cooldownMs: 30_000, ...crossed },
    ]);
  });

  it('keeps an exited generation for the history, then drops it', async () => {
    const { os, m, gens } = monitor();
    await os.advance(2000);
    gens.length = 0;
    m.exited(1);
    await os.advance(30_000);
    expect(m.seriesOf(1)).toHaveLength(1);
    expect(m.seriesOf(1)[0]!.events.map((e) => e.kind)).toContain('exit');
    await os.advance(31_000);
    expect(m.seriesOf(1)).toHaveLength(0);
  });
});

describe('memory config', () => {
  it('takes a limit as bytes of RSS or as { rss, heap }', () => {
    const c = validateConfig(
      { command: 'node app.js', memory: { interval: '2s', 'soft-limit': '300MiB', 'hard-limit': { heap: '200MiB' }, growth: { 'min-slope': '2MiB' } } },
      'test',
      '/srv',
    );
    expect(c.memory).toMatchObject({ interval: 2000, softLimit: { rss: 300 * MiB }, hardLimit: { heap: 200 * MiB }, growth: { minSlope: 2 * MiB } });
  });

  it('refuses an unknown allocator', () => {
    expect(() => validateConfig({ command: 'x', memory: { allocator: 'tcmalloc' } }, 'test', '/srv')).toThrow(/memory\.allocator/);
  });
});

describe('Generation.request', () => {
  function sdkGeneration() {
    const os = new FakeOs();
    const g = new Generation(
      {
        id: 3,
        instance: 'shop',
        spawn: { command: 'node', args: [], cwd: '/', env: {}, listenFds: [] },
        readiness: 'sdk',
        readyTimeout: 5000,
        drainTimeout: 1000,
        shutdownTimeout: 1000,
        drainSignal: 'SIGTERM',
        requestListener: () => {
          throw new Error('none');
        },
      },
      os,
      silentLog,
    );
    return { os, g, child: os.child };
  }

  it('resolves with the ack of the message it sent', async () => {
    const { g, child } = sdkGeneration();
    await child.sayReady();
    const reply = observe(g.request({ type: 'release-memory' }, 1000));
    const sent = child.sent.find((m) => m.type === 'release-memory')!;
    child.push({ type: 'ack', ack: sent.seq, ok: true, released: 42 });
    await flush();
    expect(reply).toMatchObject({ state: 'resolved', value: { ok: true, released: 42 } });
  });

  it('answers ERR_TIMEOUT when the generation does not reply, and refuses a generation without the SDK', async () => {
    const { g, child, os } = sdkGeneration();
    await expect(g.request({ type: 'release-memory' }, 1000)).rejects.toMatchObject({ code: 'ERR_NO_PROTOCOL' });
    await child.sayReady();
    const reply = observe(g.request({ type: 'heap-snapshot', dir: '/tmp' }, 1000));
    await os.advance(1000);
    expect(reply).toMatchObject({ state: 'resolved', value: { ok: false, error: { code: 'ERR_TIMEOUT' } } });
  });
});

describe('memory endpoints of the control API', () => {
  const base: ControlTarget = {
    status: () => ({ instance: 'x', pid: 1, uptimeMs: 0, active: 1, stopping: false, generations: [], listeners: [] }),
    reload: () => Promise.reject(new Error('no')),
    stop: () => undefined,
    stats: () => [],
  };
  const gen = (g: number, allocated: number | null, exitedAt?: number) => ({
    generation: g,
    pid: 10 + g,
    ...(exitedAt !== undefined ? { exitedAt } : {}),
    growing: false,
    summary: { rss: { now: 100, min: 90, max: 110, slopePerMin: 0, r2: 0 } },
    fragmentation: { v8: 0.1, malloc: 0.2, mallocScatter: null },
    allocator: { allocated, heapSize: allocated === null ? null : allocated * 2, freeInHeap: 5, released: 7 },
    events: [],
  });

  it('are offered only by a target that tracks memory', async () => {
    expect((await handleControl(base, 'GET', '/memory')).status).toBe(404);
    const withMemory: ControlTarget = { ...base, memoryReport: () => ({ interval: 5000, window: 600_000, generations: [] }), memorySeries: () => [] };
    const listing = await handleControl(withMemory, 'GET', '/nope');
    expect(JSON.stringify(listing.body)).toContain('GET /memory, GET /memory/series, POST /memory/release, POST /heap-snapshot, POST /heap-profile, POST /cpu-profile, GET /dashboard');
    const page = await handleControl(withMemory, 'GET', '/dashboard');
    expect(page.contentType).toMatch(/^text\/html/);
    expect(String(page.body)).toContain('dashboard/uplot.js');
    const lib = await handleControl(withMemory, 'GET', '/dashboard/uplot.js');
    expect(lib.contentType).toMatch(/^text\/javascript/);
    expect(String(lib.body)).toContain('uPlot');
  });

  it('/memory sums the Envoy-style summary over live generations only', async () => {
    const t: ControlTarget = {
      ...base,
      memoryReport: () => ({ interval: 5000, window: 600_000, generations: [gen(1, 1000, 5), gen(2, 40), gen(3, null)] as never }),
    };
    const reply = await handleControl(t, 'GET', '/memory');
    expect(reply.body).toMatchObject({ allocated: 40, heap_size: 80, free_in_heap: 10, released: 14, rss: 200 });
  });

  it('/heap-profile refuses a bad generation with 400', async () => {
    const t: ControlTarget = { ...base, memoryReport: () => ({ interval: 0, window: 0, generations: [] }), heapProfile: () => Promise.reject(new Error('unused')) };
    expect((await handleControl(t, 'POST', '/heap-profile?generation=x')).status).toBe(400);
  });
});
