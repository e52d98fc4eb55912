/**
 * What a generation does when the supervisor asks about its memory: release what it can (a full
 * GC, then malloc_trim), write a heap snapshot, or record a sampling heap profile. Files are
 * written owner-only (0600) in a 0700 directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { collectGarbage } from './full-gc.ts';
import { loadNative, sampleMemory } from './memory-reporter.ts';

export interface ReleaseResult {
  rssBefore: number;
  rssAfter: number;
  heapUsedBefore: number;
  heapUsedAfter: number;
  /** Free-and-resident allocator bytes before and after (glibc: free chunks' resident pages; jemalloc: resident − allocated); null when unknown. */
  mallocFreeBefore: number | null;
  mallocFreeAfter: number | null;
  gc: boolean;
  /** `malloc_trim` (glibc) or `purge` (jemalloc): which ran. */
  allocator: 'glibc' | 'jemalloc' | null;
  /** The allocator call ran and reported memory given back (glibc) / succeeded (jemalloc). */
  trimmed: boolean;
  released: number;
}

/** Free memory the allocator keeps resident: jemalloc's resident − allocated, glibc's free chunks' resident pages. */
function residentFree(addon: Awaited<ReturnType<typeof loadNative>>): number | null {
  if (!addon) return null;
  const m = safe(() => sampleMemory(addon));
  if (m === -1) return null;
  if (m.jemallocResident >= 0) return Math.max(0, m.jemallocResident - m.jemallocAllocated);
  if (m.mallocFreeResident >= 0) return m.mallocFreeResident;
  return m.mallocFree >= 0 ? m.mallocFree : null;
}

/** GC, then give free allocator pages back: malloc_trim(0) under glibc, every arena's purge under jemalloc. */
export async function releaseMemory(): Promise<ReleaseResult> {
  const addon = await loadNative();
  const before = process.memoryUsage();
  let gc = false;
  try {
    gc = collectGarbage();
    // Array buffers are freed by a concurrent sweeper: let it run, then collect once more.
    await new Promise((r) => setTimeout(r, 50));
    collectGarbage();
  } catch {
    gc = false;
  }
  const freeBefore = residentFree(addon);
  let allocator: ReleaseResult['allocator'] = null;
  let trimmed = false;
  if (addon) {
    const purged = addon.jemallocPurge();
    if (purged !== null) {
      allocator = 'jemalloc';
      trimmed = purged;
    } else {
      const t = addon.mallocTrim(0);
      if (t !== null) allocator = 'glibc';
      trimmed = t === true;
    }
  }
  const after = process.memoryUsage();
  return {
    rssBefore: before.rss,
    rssAfter: after.rss,
    heapUsedBefore: before.heapUsed,
    heapUsedAfter: after.heapUsed,
    mallocFreeBefore: freeBefore,
    mallocFreeAfter: residentFree(addon),
    gc,
    allocator,
    trimmed,
    released: Math.max(0, before.rss - after.rss),
  };
}

function safe<T>(fn: () => T): T | -1 {
  try {
    return fn();
  } catch {
    return -1;
  }
}

function outputPath(dir: string, generation: number, ext: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.join(dir, `gen${generation}-pid${process.pid}-${stamp}.${ext}`);
}

/** v8.writeHeapSnapshot into `dir`; returns the path of the 0600 file and how long the process was paused writing it. */
export function writeHeapSnapshot(dir: string, generation: number): { path: string; bytes: number; pauseMs: number } {
  const file = outputPath(dir, generation, 'heapsnapshot');
  // Create the file owner-only first, so it is never readable by others, even for a moment.
  fs.closeSync(fs.openSync(file, 'w', 0o600));
  const started = performance.now();
  v8.writeHeapSnapshot(file);
  const pauseMs = Math.round(performance.now() - started);
  fs.chmodSync(file, 0o600);
  return { path: file, bytes: fs.statSync(file).size, pauseMs };
}

/**
 * A heap snapshot taken when this generation drains: after it stops accepting and its last
 * connection has closed (so no request waits on the pause), before it exits — the SDK's drain
 * waits for this callback.
 */
export async function writeHeapSnapshotOnDrain(dir: string, generation: number): Promise<{ path: string; bytes: number; pauseMs: number }> {
  const { onDrain, openConnections } = await import('../sdk.ts');
  return new Promise((resolve, reject) => {
    onDrain(async () => {
      // The drain deadline bounds this: past it Baton cuts the connections, and the count falls to 0.
      while (openConnections() > 0) await new Promise((r) => setTimeout(r, 10));
      try {
        resolve(writeHeapSnapshot(dir, generation));
      } catch (err) {
        reject(err as Error);
      }
      // The reply goes out in the microtasks that follow; the process exits only after this returns.
      await new Promise((r) => setImmediate(r));
    });
  });
}

/**
 * A sampling heap profile over `seconds`, written into `dir` as a .heapprofile (0600). Objects
 * collected by major and minor GCs stay in the profile, so it shows where memory is allocated
 * (churn included), not only what survives.
 */
export async function writeHeapProfile(dir: string, generation: number, seconds: number): Promise<{ path: string; bytes: number }> {
  return withSession(async (session) => {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 32768,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
      // Newer than some @types/node: the flags are V8's (Node ≥ 22 ships them).
    } as { samplingInterval: number });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const { profile } = await session.post('HeapProfiler.stopSampling');
    return writeOwnerOnly(outputPath(dir, generation, 'heapprofile'), JSON.stringify(profile));
  });
}

/** A CPU profile over `seconds` (V8's sampling profiler), written into `dir` as a .cpuprofile (0600). */
export async function writeCpuProfile(dir: string, generation: number, seconds: number): Promise<{ path: string; bytes: number }> {
  return withSession(async (session) => {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const { profile } = await session.post('Profiler.stop');
    return writeOwnerOnly(outputPath(dir, generation, 'cpuprofile'), JSON.stringify(profile));
  });
}

type InspectorSession = InstanceType<typeof import('node:inspector/promises').Session>;

async function withSession<T>(run: (session: InspectorSession) => Promise<T>): Promise<T> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  try {
    return await run(session);
  } finally {
    session.disconnect();
  }
}

function writeOwnerOnly(file: string, text: string): { path: string; bytes: number } {
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return { path: file, bytes: fs.statSync(file).size };
}
