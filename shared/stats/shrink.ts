/**
 * Segment files cut short under their mappings. Any process that can write the file (every
 * generation: the segment is theirs to write) can ftruncate it, and an access past the new end
 * of a mapping raises SIGBUS, which JavaScript cannot catch. Prevention is not on offer:
 * F_SEAL_SHRINK exists only on memfds, which have no name in the segment directory for
 * generations and `baton stats` to open, and growth has generations create segments of their own.
 * So survival is split in two: the native mmap guards every mapping (a fault past the cut maps
 * private zero pages and the access retries; see shared/native), and the owner compares each
 * file's size with its mapping before every pass, sets a short one's size back at once so the
 * processes that have not faulted yet keep sharing the file, and reports it — what lay past the
 * cut is lost.
 */
import fs from 'node:fs';
import { busFaults } from '../native/native.ts';
import type { Segment } from './files.ts';
import type { Layout } from './layout.ts';

/** A segment file found shorter than its mapping. */
export interface ShrunkSegment {
  segment: number;
  file: string;
  size: number;
  expected: number;
}

/** busFaults() when last reported: the guard's count is per process. */
let reportedFaults = busFaults();

/** The segments whose files are shorter than `layout.segmentBytes`, restored to it when `restore`; absorbed SIGBUS faults since the last call are warned about. */
export function findShrunk(
  segments: readonly Segment[],
  layout: Layout,
  pathOf: (k: number) => string,
  restore: boolean,
  logger: { warn(message: string): void },
): ShrunkSegment[] {
  const shrunk: ShrunkSegment[] = [];
  for (const s of segments) {
    let size: number;
    try {
      size = fs.fstatSync(s.fd).size;
    } catch {
      continue;
    }
    if (size >= layout.segmentBytes) continue;
    shrunk.push({ segment: s.index, file: pathOf(s.index), size, expected: layout.segmentBytes });
    if (restore) {
      try {
        fs.ftruncateSync(s.fd, layout.segmentBytes);
      } catch {
        // reported all the same
      }
    }
  }
  const faults = busFaults();
  if (faults !== reportedFaults) {
    logger.warn(`stats: ${faults - reportedFaults} access(es) past the end of a cut-short segment file read zeros instead of raising SIGBUS`);
    reportedFaults = faults;
  }
  return shrunk;
}
