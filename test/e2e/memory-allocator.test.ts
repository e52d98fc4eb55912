// True allocator figures around a release, under glibc and under jemalloc: the free memory a
// generation holds shows as free-and-resident before, as returned to the kernel after, and RSS
// falls with it; a figure this allocator cannot give is null, never 0.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

afterEach(cleanupAll);

const MiB = 1024 * 1024;
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const app = fixture('memory-app.ts');

interface Allocator {
  kind: string | null;
  allocated: number | null;
  freeInHeap: number | null;
  returned: number | null;
  jemalloc: { allocated: number; active: number; resident: number; retained: number } | null;
}
interface Summary {
  free_in_heap: number | null;
  returned: number | null;
  generations: { generation: number; allocator: Allocator; summary: { rss?: { now: number } } }[];
}

async function summary(baton: BatonProcess): Promise<Summary> {
  return (await controlRequest(baton.socketPath, 'GET', '/memory')).body as Summary;
}

/** Polls /memory until `match` accepts generation 1's figures (the supervisor samples on its own clock). */
async function until(baton: BatonProcess, match: (a: Allocator) => boolean, timeoutMs = 15_000): Promise<Summary> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await summary(baton);
    const a = s.generations.find((g) => g.generation === 1)?.allocator;
    if (a && match(a)) return s;
    if (Date.now() > deadline) throw new Error(`allocator figures never matched: ${JSON.stringify(a)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('allocator figures', () => {
  it('glibc: freed memory shows as free and resident, and as returned after malloc_trim', async () => {
    const baton = new BatonProcess(httpConfig(app, { env: { MEMORY_MODE: 'hold', MALLOC_TRIM_THRESHOLD_: '1073741824' }, memory: { interval: '250ms' } }));
    await baton.active(1);
    const before = await until(baton, (a) => (a.freeInHeap ?? 0) > 80 * MiB);
    const b = before.generations[0]!.allocator;
    expect(b.kind).toBe('glibc');
    expect(b.jemalloc).toBeNull();
    expect(b.returned).not.toBeNull();
    const reply = (await controlRequest(baton.socketPath, 'POST', '/memory/release')).body as Record<string, unknown>;
    expect(reply).toMatchObject({ ok: true, allocator: 'glibc', trimmed: true });
    expect(reply.released as number).toBeGreaterThan(80 * MiB);
    const after = await until(baton, (a) => (a.returned ?? 0) > 80 * MiB);
    const a = after.generations[0]!.allocator;
    console.log(`glibc release: free resident ${(b.freeInHeap! / MiB).toFixed(1)} → ${(a.freeInHeap! / MiB).toFixed(1)} MiB, returned ${(b.returned! / MiB).toFixed(1)} → ${(a.returned! / MiB).toFixed(1)} MiB, RSS ${((reply.rssBefore as number) / MiB).toFixed(0)} → ${((reply.rssAfter as number) / MiB).toFixed(0)} MiB`);
    expect(a.freeInHeap!).toBeLessThan(b.freeInHeap! - 80 * MiB);
    expect(after.returned).toBeGreaterThan(80 * MiB);
    const text = await baton.cli('memory');
    expect(text.stdout).toMatch(/malloc free \(returned\) +[\d.]+M/);
    expect(text.stdout).not.toMatch(/jemalloc/);
  });

  it.skipIf(!fs.existsSync(JEMALLOC))(
    fs.existsSync(JEMALLOC) ? 'jemalloc: allocated/active/resident/retained, and a release purges the arenas' : `jemalloc — skipped: ${JEMALLOC} is absent (apt-get install libjemalloc2)`,
    async () => {
      // dirty_decay_ms:-1 keeps freed pages dirty until purged, so only the release can return them.
      const baton = new BatonProcess(httpConfig(app, { env: { MEMORY_MODE: 'hold', MALLOC_CONF: 'dirty_decay_ms:-1,muzzy_decay_ms:-1' }, memory: { interval: '250ms', allocator: 'jemalloc' } }));
      await baton.active(1);
      const before = await until(baton, (a) => a.kind === 'jemalloc' && (a.freeInHeap ?? 0) > 80 * MiB);
      const b = before.generations[0]!.allocator;
      expect(b.jemalloc!.resident).toBeGreaterThan(b.jemalloc!.allocated);
      const text = await baton.cli('memory');
      expect(text.stdout).toMatch(/jemalloc allocated +[\d.]+M/);
      expect(text.stdout).not.toMatch(/jemalloc allocated +0\.0M/);
      expect(text.stdout).not.toMatch(/malloc in use/);
      const reply = (await controlRequest(baton.socketPath, 'POST', '/memory/release')).body as Record<string, unknown>;
      expect(reply).toMatchObject({ ok: true, allocator: 'jemalloc', trimmed: true });
      expect(reply.released as number).toBeGreaterThan(80 * MiB);
      const after = await until(baton, (a) => (a.freeInHeap ?? Infinity) < b.freeInHeap! - 80 * MiB);
      const a = after.generations[0]!.allocator;
      console.log(`jemalloc release: resident ${(b.jemalloc!.resident / MiB).toFixed(1)} → ${(a.jemalloc!.resident / MiB).toFixed(1)} MiB, retained ${(b.jemalloc!.retained / MiB).toFixed(1)} → ${(a.jemalloc!.retained / MiB).toFixed(1)} MiB, RSS ${((reply.rssBefore as number) / MiB).toFixed(0)} → ${((reply.rssAfter as number) / MiB).toFixed(0)} MiB`);
      expect(a.jemalloc!.retained).toBeGreaterThan(b.jemalloc!.retained);
    },
  );
});
