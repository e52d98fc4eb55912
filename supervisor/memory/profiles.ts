/**
 * The profiles directory's guards: a heap snapshot is refused when the disk cannot hold it, and
 * the directory keeps only the newest profiles, so on-demand profiling never fills a disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BatonError } from '../../shared/errors.ts';

/** Profiles kept in the directory (newest first); older ones are deleted after each new one. @default 20 */
export const PROFILES_KEPT = 20;
/** A snapshot's JSON runs to about this many times the V8 heap it describes. */
const SNAPSHOT_PER_HEAP_BYTE = 3;
const SLACK = 64 * 1024 * 1024;

/** Throws ERR_DISK_SPACE unless `dir`'s file system has room for a snapshot of a `heapBytes` heap. */
export function checkSnapshotSpace(dir: string, heapBytes: number): void {
  const fsStats = fs.statfsSync(dir);
  const free = fsStats.bavail * fsStats.bsize;
  const need = heapBytes * SNAPSHOT_PER_HEAP_BYTE + SLACK;
  if (free < need) {
    throw new BatonError(
      'ERR_DISK_SPACE',
      `not writing a heap snapshot into ${dir}: ${mib(free)} free, a ${mib(heapBytes)} heap needs about ${mib(need)}; free space or set memory.profile-dir`,
    );
  }
}

/** Deletes all but the newest `keep` profiles (by modification time) in `dir`; returns the paths deleted. */
export function pruneProfiles(dir: string, keep = PROFILES_KEPT): string[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^gen\d+-pid\d+-.*\.(heapsnapshot|heapprofile|cpuprofile)$/.test(f))
    .map((f) => ({ file: path.join(dir, f), mtime: fs.statSync(path.join(dir, f)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  const gone = files.slice(keep).map((f) => f.file);
  for (const f of gone) fs.rmSync(f, { force: true });
  return gone;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(0)} MiB`;
}
