/**
 * A segment only its own process maps (a program using the SDK without Baton): created, then
 * unlinked at once, so it lives as long as the mapping. A process killed between the two (SIGKILL
 * during its first stat) leaves a file named after its pid that nobody would remove, so each new
 * private segment first removes those of processes that no longer exist.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_DIR, prefix, removeOwn } from './files.ts';
import { createSegment, type OwnerStats } from './owner-stats.ts';

/** Instance name of a process's private segment; the pid is how a stale one is recognised. */
export function privateInstance(pid: number): string {
  return `standalone-${pid}`;
}

/** True when no process has this pid (EPERM means one exists, of another user). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes the private segment files in `dir` of this uid's processes that have exited; returns
 * their paths. A file that is not this uid's 0600 regular file is left alone (removeOwn refuses it):
 * /dev/shm is writable by every user, and another's file is not ours to judge.
 */
export function removeDeadPrivateSegments(dir = DEFAULT_DIR): string[] {
  // The name segmentPath gives privateInstance(pid)'s segments, the pid captured.
  const pattern = new RegExp(`^${prefix(privateInstance(0)).slice(0, -1)}(\\d+)\\.\\d+$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return []; // no directory: nothing was left there
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1] ?? 0);
    if (pid <= 0 || pid === process.pid || !gone(pid)) continue;
    const file = path.join(dir, name);
    try {
      removeOwn(file);
      removed.push(file);
    } catch {
      // refused (another user's, a symlink, the wrong mode) or raced away: not ours to remove
    }
  }
  return removed;
}

/** Creates this process's private segment in `dir` and unlinks it; the returned handle keeps working on the mapping. */
export function createPrivateSegment(dir = DEFAULT_DIR): OwnerStats {
  removeDeadPrivateSegments(dir);
  const stats = createSegment({ instance: privateInstance(process.pid), dir, soleWriter: true });
  stats.destroy();
  return stats;
}
