import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

const MiB = 1024 * 1024;
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const app = fixture('memory-app.ts');

interface Point {
  t: number;
  rss?: number;
  pss?: number;
  heapUsed?: number;
}

async function series(baton: BatonProcess, generation: number): Promise<Point[]> {
  const reply = await controlRequest(baton.socketPath, 'GET', `/memory/series?generation=${generation}`);
  return (reply.body as { generations: { points: Point[] }[] }).generations[0]?.points ?? [];
}

/** Polls the series of `generation` until `match` accepts it (the supervisor samples on its own clock). */
async function untilSeries(baton: BatonProcess, generation: number, match: (p: Point[]) => boolean, timeoutMs = 30_000): Promise<Point[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const points = await series(baton, generation);
    if (match(points)) return points;
    if (Date.now() > deadline) throw new Error(`series never matched; last points: ${JSON.stringify(points.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('memory', () => {
  it('flags a leaking generation as growing, then replaces it at the hard limit with 0 refused connections', async () => {
    const config = (mode: string) =>
      httpConfig(app, {
        env: { MEMORY_MODE: mode, LEAK_MS: '50' },
        memory: { interval: '250ms', window: '4s', 'hard-limit': '300MiB', 'replace-cooldown': '1m', growth: { 'min-slope': '10MiB' } },
      });
    const baton = new BatonProcess(config('leak'));
    await baton.active(1);
    const load = startLoad({ port: await baton.port() }, { keepAlive: 0, newConnection: 4 });
    await load.progress(5);
    // The finding lists every figure that grows; which comes first depends on GC timing.
    const growing = await baton.waitForEvent('memory-growing', (e) => e.generation === 1);
    expect(growing.figures.filter((f) => f === 'external' || f === 'malloc'), JSON.stringify(growing)).not.toEqual([]);
    expect(growing.slopeMiBPerMin).toBeGreaterThan(10);
    // Polled: on a busy machine one noisy sample can clear the flag for an interval.
    await expect
      .poll(async () => (await baton.cli('status')).stdout, { timeout: 15_000 })
      .toMatch(/memory: generation 1 is growing, \+[\d.]+ MiB\/min \(RSS [\d.]+ MiB\)/);
    await expect
      .poll(async () => ((await baton.status()).generations.find((g) => g.generation === 1) as { memory?: { growing: boolean } }).memory?.growing, { timeout: 15_000 })
      .toBe(true);
    // An edit on disk that nobody reloaded: the replacement must not deploy it (issue #13), so it
    // runs the config in force and leaks too; the cooldown keeps it from being replaced again here.
    baton.writeConfig(config(''));
    const over = await baton.waitForEvent('memory-limit', (e) => e.generation === 1 && e.limit === 'hard');
    expect(over).toMatchObject({ figure: 'rss', limitBytes: 300 * MiB });
    expect(over.bytes).toBeGreaterThan(300 * MiB);
    await baton.waitForEvent('memory-replaced', (e) => e.generation === 1 && e.replacement === 2);
    await load.progress(10);
    const counts = await load.stop();
    console.log(`memory hard limit under load: ${describeCounts(counts)}`);
    expect(counts.refused, describeCounts(counts)).toBe(0);
    expect(counts.reset, describeCounts(counts)).toBe(0);
    expect(counts.other, describeCounts(counts)).toBe(0);
    expect(counts.non200, describeCounts(counts)).toBe(0);
    expect(counts.bodies.some((b) => b.startsWith('generation 2 '))).toBe(true);
    await baton.workerState(1, 'exited');
    // The replacement starts below the limit: no replacement held back by the cooldown so far.
    expect(baton.events.filter((e) => e.type === 'memory-cooldown')).toEqual([]);
  });

  it('shows RSS and PSS of a generation whose event loop is blocked', async () => {
    const baton = new BatonProcess(httpConfig(app, { env: { MEMORY_MODE: 'blocked' }, memory: { interval: '250ms', window: '5s' } }));
    await baton.active(1);
    // The child's own figures stop (its loop is blocked); the supervisor's, from /proc, go on.
    const points = await untilSeries(baton, 1, (p) => p.some((x) => x.heapUsed !== undefined) && p.slice(-3).length === 3 && p.slice(-3).every((x) => x.heapUsed === undefined && (x.rss ?? 0) > 0));
    expect(points.at(-1)!.pss).toBeGreaterThan(0);
    const text = await baton.cli('memory');
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/generation 1 \(pid \d+, live\)/);
    expect(text.stdout).toMatch(/\n  RSS +[\d.]+M/);
    expect(text.stdout).toMatch(/\n  PSS +[\d.]+M/);
    const json = await baton.cli('memory', '--json');
    const body = JSON.parse(json.stdout) as { generations: { generation: number; points: Point[] }[] };
    expect(body.generations[0]!.points.at(-1)!.rss).toBeGreaterThan(10 * MiB);
  });

  it('baton memory --segment reads a wedged supervisor\'s generations from the shared segment and /proc', async () => {
    const baton = new BatonProcess(httpConfig(app, { memory: { interval: '250ms' } }));
    await baton.active(1);
    await untilSeries(baton, 1, (p) => p.some((x) => x.heapUsed !== undefined));
    process.kill(baton.pid, 'SIGSTOP');
    try {
      const out = await baton.cli('memory', '--segment', '--name', 'test');
      expect(out.exitCode, out.stderr).toBe(0);
      expect(out.stdout).toMatch(/GEN\s+PID\s+STATE\s+RSS\s+PSS/);
      expect(out.stdout).toMatch(/\n1\s+\d+\s+active\s+[\d.]+M\s+[\d.]+M\s+[\d.]+M\s+[\d.]+M/);
    } finally {
      process.kill(baton.pid, 'SIGCONT');
    }
  });

  it('soft limit: a generation holding freed malloc memory releases it, and its RSS falls', async () => {
    // glibc returns the top of its heap on free() past the trim threshold; with a threshold this high
    // (a long-running server's dynamic threshold ends up there too) the freed memory stays held until trimmed.
    const baton = new BatonProcess(httpConfig(app, { env: { MEMORY_MODE: 'hold', MALLOC_TRIM_THRESHOLD_: '1073741824' }, memory: { interval: '250ms', window: '3s', 'soft-limit': '150MiB' } }));
    await baton.active(1);
    const released = await baton.waitForEvent('memory-released', (e) => e.generation === 1 && e.released > 50 * MiB);
    expect(released.rssAfter).toBeLessThan(released.rssBefore - 50 * MiB);
    expect(released.trimmed).toBe(true);
    const t = released.time;
    const points = await untilSeries(baton, 1, (p) => p.some((x) => x.t > t + 300));
    expect(points.find((x) => x.t > t + 300)!.rss).toBeLessThan(released.rssBefore - 50 * MiB);
    const summary = (await controlRequest(baton.socketPath, 'GET', '/memory')).body as { released: number; allocated: number; heap_size: number; free_in_heap: number };
    expect(summary.released).toBeGreaterThan(50 * MiB);
    expect(summary.heap_size).toBeGreaterThan(0);
    expect(summary.allocated).toBeGreaterThan(0);
    expect(summary.free_in_heap).toBeGreaterThanOrEqual(0);
  });

  it('writes a heap snapshot and a sampling heap profile, owner-only, as the JSON DevTools opens', async () => {
    const baton = new BatonProcess(httpConfig(app, { memory: { interval: '1s' } }));
    await baton.active(1);
    const snap = await baton.cli('heap-snapshot', '--in-place');
    expect(snap.exitCode, snap.stderr).toBe(0);
    const snapPath = snap.stdout.trim();
    expect(snapPath).toMatch(/gen1-pid\d+-.*\.heapsnapshot$/);
    expect(fs.statSync(snapPath).mode & 0o777).toBe(0o600);
    const snapshot = JSON.parse(fs.readFileSync(snapPath, 'utf8')) as { snapshot: { meta: { node_fields: string[] }; node_count: number }; nodes: number[]; strings: string[] };
    expect(snapshot.snapshot.meta.node_fields).toContain('self_size');
    expect(snapshot.nodes.length).toBe(snapshot.snapshot.node_count * snapshot.snapshot.meta.node_fields.length);
    expect(snapshot.strings.length).toBeGreaterThan(0);

    const load = startLoad({ port: await baton.port() }, { keepAlive: 2, newConnection: 0 });
    const prof = await baton.cli('heap-profile', '1', '--seconds', '1');
    const cpu = await baton.cli('cpu-profile', '1', '--seconds', '1');
    await load.stop();
    expect(cpu.exitCode, cpu.stderr).toBe(0);
    const cpuPath = cpu.stdout.trim();
    expect(cpuPath).toMatch(/gen1-pid\d+-.*\.cpuprofile$/);
    expect(fs.statSync(cpuPath).mode & 0o777).toBe(0o600);
    const cpuProfile = JSON.parse(fs.readFileSync(cpuPath, 'utf8')) as { nodes: { callFrame: { functionName: string } }[]; startTime: number; endTime: number; samples: number[] };
    expect(cpuProfile.nodes[0]!.callFrame.functionName).toBe('(root)');
    expect(cpuProfile.endTime - cpuProfile.startTime).toBeGreaterThanOrEqual(900_000); // µs
    expect(cpuProfile.samples.length).toBeGreaterThan(10);
    expect(prof.exitCode, prof.stderr).toBe(0);
    const profPath = prof.stdout.trim();
    expect(profPath).toMatch(/\.heapprofile$/);
    expect(fs.statSync(profPath).mode & 0o777).toBe(0o600);
    const profile = JSON.parse(fs.readFileSync(profPath, 'utf8')) as { head: { callFrame: { functionName: string }; children: unknown[] }; samples: unknown[] };
    expect(profile.head.callFrame.functionName).toBe('(root)');
    expect(Array.isArray(profile.head.children)).toBe(true);
    expect(Array.isArray(profile.samples)).toBe(true);

    const missing = await baton.cli('heap-snapshot', '9');
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no live generation 9');
  });

  it.skipIf(!fs.existsSync(JEMALLOC))(
    fs.existsSync(JEMALLOC) ? 'allocator: jemalloc preloads libjemalloc into the generation' : `allocator: jemalloc — skipped: ${JEMALLOC} is absent (apt-get install libjemalloc2)`,
    async () => {
      const baton = new BatonProcess(httpConfig(app, { memory: { interval: '1s', allocator: 'jemalloc' } }));
      await baton.active(1);
      const pid = (await baton.status()).generations[0]!.pid;
      expect(fs.readFileSync(`/proc/${pid}/maps`, 'utf8')).toContain('libjemalloc.so.2');
      // jemalloc's own figures reach the segment through the child's reporter.
      await expect
        .poll(async () => {
          const body = (await controlRequest(baton.socketPath, 'GET', `/stats?filter=${encodeURIComponent('^baton\\.memory\\.jemalloc_allocated$')}`)).body as { stats: { value?: number }[] };
          return body.stats[0]?.value ?? -1;
        }, { timeout: 10_000 })
        .toBeGreaterThan(0);
      expect((await baton.reload()).body.ok).toBe(true);
    },
  );
});
