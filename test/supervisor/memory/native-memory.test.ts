// The addon's allocator calls for memory insight: jemalloc's purge and mincore's resident bytes.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { arenaMappings } from '../../../shared/memory-figures.ts';
import { jemallocPurge, residentBytes } from '../../../shared/native/native.ts';

const nativeUrl = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/native/native.ts')).href;
const JEMALLOC = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2'].find((p) => fs.existsSync(p));

describe('native memory calls', () => {
  it('jemallocPurge is null under glibc malloc', () => {
    expect(jemallocPurge()).toBeNull();
  });

  it.skipIf(!JEMALLOC)(JEMALLOC ? 'jemallocPurge returns freed dirty pages to the kernel under jemalloc' : 'jemallocPurge — skipped: libjemalloc2 is not installed', () => {
    // Buffers' memory goes back to the allocator when their finalizers run, which a GC only schedules:
    // poll until jemalloc has them back (or give up after a second), then purge.
    const script = `import { jemallocPurge, jemallocStats } from ${JSON.stringify(nativeUrl)};
      let keep = Array.from({ length: 64 }, () => Buffer.alloc(1 << 20, 1));
      const held = jemallocStats().allocated; keep = null;
      for (let i = 0; i < 50 && jemallocStats().allocated > held - 48 * 1024 * 1024; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
      const before = jemallocStats(); const purged = jemallocPurge(); const after = jemallocStats();
      console.log(JSON.stringify({ purged, before, after }));`;
    const child = spawnSync(process.execPath, ['--expose-gc', '--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], {
      env: { ...process.env, LD_PRELOAD: JEMALLOC, MALLOC_CONF: 'dirty_decay_ms:-1' },
      encoding: 'utf8',
    });
    expect(child.status, child.stderr).toBe(0);
    const r = JSON.parse(child.stdout) as { purged: boolean; before: Record<string, number>; after: Record<string, number> };
    expect(r.purged).toBe(true);
    expect(r.after.resident).toBeLessThan(r.before.resident! - 32 * 1024 * 1024);
    expect(r.after.retained).toBeGreaterThan(r.before.retained!);
  });

  it('residentBytes counts the resident pages of a mapping, and fails with the errno name on an unmapped range', () => {
    const heap = arenaMappings(fs.readFileSync('/proc/self/maps', 'utf8')).find((m) => m.main)!;
    expect(heap).toBeDefined();
    const resident = residentBytes(heap.start, heap.length);
    expect(resident).toBeGreaterThan(0);
    expect(resident).toBeLessThanOrEqual(heap.length);
    expect(() => residentBytes(4096, 4096)).toThrow(expect.objectContaining({ code: 'ENOMEM', syscall: 'mincore' }));
    expect(() => residentBytes(-1, 4096)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('finds glibc thread-arena heaps: 64 MiB-aligned read-write starts with the rest of 64 MiB reserved', () => {
    const maps = [
      '55d0c0a00000-55d0c0b00000 rw-p 00000000 00:00 0                          [heap]',
      '7f0000000000-7f0000021000 rw-p 00000000 00:00 0 ',
      '7f0000021000-7f0004000000 ---p 00000000 00:00 0 ',
      '7f0008000000-7f0008021000 rw-p 00000000 00:00 0 ',
      '7f0008021000-7f0009000000 ---p 00000000 00:00 0 ',
    ].join('\n');
    expect(arenaMappings(maps)).toEqual([
      { start: 0x55d0c0a00000, length: 0x100000, main: true },
      { start: 0x7f0000000000, length: 0x21000, main: false },
    ]);
  });
});
