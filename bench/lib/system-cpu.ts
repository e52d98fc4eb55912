// The CPU a system under test used per request over one load run, and how often its threads slept:
// every process of it (a supervisor, its reapers and workers; a master and its workers; one
// process), and the upstream beside it, whose cost a proxy changes too (how often it is preempted).
import { descendants } from '../../supervisor/os/proc-tree.ts';
import { cpuMsOf, sleepsOf } from './procs.ts';

export interface CpuFigures {
  /** µs of CPU (user + system, every thread) the system's processes used per request. */
  cpuUs: number;
  /** Voluntary context switches of all their threads per 1,000 requests. */
  sleeps: number;
  /** µs of the upstream's CPU per request (NaN when the system is the upstream). */
  upstreamUs: number;
}

const cpuOf = (pid: number): number => {
  try {
    return cpuMsOf(pid);
  } catch {
    return 0; // exited since the list was taken
  }
};
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** Reads the processes under `root` (and `upstream`) now; `end(requests)` reads them again and gives the figures per request. */
export function sampleCpu(root: number | undefined, upstream: number): { end(requests: number): CpuFigures | undefined } {
  if (root === undefined) return { end: () => undefined };
  const pids = [root, ...descendants(root)];
  const read = () => ({ cpu: sum(pids.map(cpuOf)), sleeps: sum(pids.map(sleepsOf)), upstream: cpuOf(upstream) });
  const before = read();
  return {
    end(requests) {
      if (!(requests > 0)) return undefined;
      const after = read();
      return {
        cpuUs: ((after.cpu - before.cpu) * 1000) / requests,
        sleeps: ((after.sleeps - before.sleeps) * 1000) / requests,
        upstreamUs: root === upstream ? NaN : ((after.upstream - before.upstream) * 1000) / requests,
      };
    },
  };
}
