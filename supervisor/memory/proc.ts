/**
 * The supervisor's view of a generation's memory, read from /proc/<pid>/smaps_rollup without the
 * child's help: it works when the child's event loop is blocked.
 */
import fs from 'node:fs';

/** Bytes, from smaps_rollup. */
export interface ProcMemory {
  rss: number;
  pss: number;
  privateDirty: number;
  anonymous: number;
  swap: number;
}

/** Reads a process's memory; undefined when it is gone or unreadable. The seam unit tests fake. */
export interface MemoryProbe {
  read(pid: number): ProcMemory | undefined;
  /** RSS alone, cheaply (/proc/<pid>/statm), for the limit watch between samples; absent: no fast watch. */
  rss?(pid: number): number | undefined;
}

const PAGE = 4096;

const FIELDS: Record<string, keyof ProcMemory> = {
  Rss: 'rss',
  Pss: 'pss',
  Private_Dirty: 'privateDirty',
  Anonymous: 'anonymous',
  Swap: 'swap',
};

/** Parses the text of smaps_rollup (`Rss:  1234 kB` lines). */
export function parseSmapsRollup(text: string): ProcMemory {
  const out: ProcMemory = { rss: 0, pss: 0, privateDirty: 0, anonymous: 0, swap: 0 };
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) {
    const key = FIELDS[m[1]!];
    if (key) out[key] = Number(m[2]) * 1024;
  }
  return out;
}

/** The real probe: /proc/<pid>/smaps_rollup (Linux ≥ 4.14). */
export const procMemoryProbe: MemoryProbe = {
  read(pid) {
    try {
      return parseSmapsRollup(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    } catch {
      return undefined;
    }
  },
  rss(pid) {
    try {
      // statm: size resident shared … in pages; one short read, no page-table walk like smaps.
      const resident = Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
      return Number.isFinite(resident) ? resident * PAGE : undefined;
    } catch {
      return undefined;
    }
  },
};
