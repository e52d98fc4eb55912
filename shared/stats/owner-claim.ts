/**
 * Claiming an instance's segment 0 for a new owner: create it exclusively, and when a file is
 * already there decide whose it is. A live owner (another supervisor of the instance) is refused;
 * a dead one's set is stale and removed, so a supervisor that was SIGKILLed does not block the
 * next start. It stands apart from segment.ts because it is the one decision about other
 * processes' files a start makes, taken before there is a set to map or grow.
 */
import fs from 'node:fs';
import { BatonError } from '../errors.ts';
import { createFile, listSegmentFiles, removeOwn, segmentPath, untrusted, untrustedError, waitForOwner, type Segment } from './files.ts';
import { STATS_ERR, type Layout } from './layout.ts';
import { isAlive } from './locks.ts';

/**
 * Creates segment 0 of `instance` in `dir`, `init` writing its owner fields; removes a stale set
 * first and returns its owner's pid (0 when it never wrote one). Throws ERR_INSTANCE_RUNNING while
 * a live process owns the instance, or when the name stays taken.
 */
export function claimSegmentZero(
  dir: string,
  instance: string,
  layout: Layout,
  init: (s: Segment) => void,
): { segment: Segment; stalePid: number | undefined } {
  const file = segmentPath(dir, instance, 0);
  let stalePid: number | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      return { segment: createFile(file, layout, 0, init), stalePid };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let existing: fs.Stats | undefined;
    try {
      existing = fs.lstatSync(file);
    } catch {
      existing = undefined; // removed since: try again
    }
    const why = existing && untrusted(existing);
    if (why !== undefined) throw untrustedError(file, why);
    const owner = waitForOwner(file);
    const alive = owner !== undefined && isAlive(owner);
    if (alive || attempt >= 2) {
      throw new BatonError(
        STATS_ERR.owned,
        `stats: instance "${instance}" already owns segment ${file} (owner pid ${owner ?? 'unknown'}${alive ? ' is alive' : ''})`,
      );
    }
    stalePid = owner ?? 0;
    for (const stale of listSegmentFiles(dir, instance)) removeOwn(stale);
  }
}
