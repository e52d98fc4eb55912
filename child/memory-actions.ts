/**
 * What a generation does when the supervisor asks about its memory: release what it can (a full
 * GC, then malloc_trim), write a heap snapshot, or record a sampling heap profile. Files are
 * written owner-only (0600) in a 0700 directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadNative } from './memory-reporter.ts';

let gcFn: (() => void) | undefined;

/** A full garbage collection, without --expose-gc (the flag is set at run time, once). */
export function collectGarbage(): boolean {
  if (gcFn === undefined) {
    const global = (globalThis as { gc?: () => void }).gc;
    if (typeof global === 'function') gcFn = global;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    }
  }
  gcFn();
  return true;
}

export interface ReleaseResult {
  rssBefore: number;
  rssAfter: number;
  heapUsedBefore: number;
  heapUsedAfter: number;
  mallocFreeBefore: number;
  mallocFreeAfter: number;
  gc: boolean;
  trimmed: boolean;
  released: number;
}

/** GC, then malloc_trim(0): what the soft limit asks for. */
export async function releaseMemory(): Promise<ReleaseResult> {
  const addon = await loadNative();
  const before = process.memoryUsage();
  const mallocBefore = addon ? safe(() => addon.mallinfo2()?.fordblks ?? -1) : -1;
  let gc = false;
  try {
    gc = collectGarbage();
    // Array buffers are freed by a concurrent sweeper: let it run, then collect once more.
    await new Promise((r) => setTimeout(r, 50));
    collectGarbage();
  } catch {
    gc = false;
  }
  const mallocMid = addon ? safe(() => addon.mallinfo2()?.fordblks ?? -1) : -1;
  const trimmed = addon ? safe(() => addon.mallocTrim(0)) === true : false;
  const after = process.memoryUsage();
  const mallocAfter = addon ? safe(() => addon.mallinfo2()?.fordblks ?? -1) : -1;
  return {
    rssBefore: before.rss,
    rssAfter: after.rss,
    heapUsedBefore: before.heapUsed,
    heapUsedAfter: after.heapUsed,
    mallocFreeBefore: mallocBefore === -1 ? mallocBefore : Number(mallocMid),
    mallocFreeAfter: Number(mallocAfter),
    gc,
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

/** v8.writeHeapSnapshot into `dir`; returns the path of the 0600 file. */
export function writeHeapSnapshot(dir: string, generation: number): { path: string; bytes: number } {
  const file = outputPath(dir, generation, 'heapsnapshot');
  // Create the file owner-only first, so it is never readable by others, even for a moment.
  fs.closeSync(fs.openSync(file, 'w', 0o600));
  v8.writeHeapSnapshot(file);
  fs.chmodSync(file, 0o600);
  return { path: file, bytes: fs.statSync(file).size };
}

/** A sampling heap profile over `seconds`, written into `dir` as a .heapprofile (0600). */
export async function writeHeapProfile(dir: string, generation: number, seconds: number): Promise<{ path: string; bytes: number }> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 32768 });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const file = outputPath(dir, generation, 'heapprofile');
    fs.writeFileSync(file, JSON.stringify(profile), { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    return { path: file, bytes: fs.statSync(file).size };
  } finally {
    session.disconnect();
  }
}
