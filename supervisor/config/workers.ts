import fs from 'node:fs';
import os from 'node:os';
import { BatonError } from '../../shared/errors.ts';
import { DEFAULT_CAPACITIES, type StatsCapacities } from '../../shared/stats/index.ts';

/**
 * Generations alive at once the stats segment must hold a writer for, worker by worker: the
 * serving one, the one starting, and up to `max-draining` still draining. Sized for fewer (one
 * draining), a slow drain under reloads left the newest workers without a writer slot, and their
 * counts went unrecorded (a CI run on a loaded machine: 431 of 4,208 requests, workers: 4).
 */
export function concurrentGenerations(maxDraining: number): number {
  return 2 + maxDraining;
}

/**
 * CPUs this process may use: the affinity mask (os.availableParallelism honours it), capped by
 * the cgroup v2 CPU quota (/sys/fs/cgroup/cpu.max, rounded up), at least 1.
 */
export function usableCpus(cpuMax = '/sys/fs/cgroup/cpu.max'): number {
  const affinity = os.availableParallelism();
  return Math.max(1, Math.min(affinity, cgroupCpus(cpuMax) ?? affinity));
}

/** The CPU quota of `cpu.max` ("quota period", or "max period" for none). */
export function cgroupCpus(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max' || period === undefined) return undefined;
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? Math.ceil(q / p) : undefined;
}

/**
 * The stats writer slots (and generation-table entries) `workers` need: the supervisor's plus
 * one per worker of every generation alive at once (concurrentGenerations). Without
 * `stats.writers` the default is raised as far as needed; a `stats.writers` that cannot hold two
 * generations of workers is an error.
 */
export function statsWriters(configured: number | undefined, workers: number, where: string, maxDraining = 3): Pick<StatsCapacities, 'writers' | 'generations'> {
  const wanted = 1 + workers * concurrentGenerations(maxDraining);
  if (configured !== undefined) {
    const least = 1 + workers * 2;
    if (configured < least) {
      throw new BatonError(
        'ERR_CONFIG',
        `invalid configuration in ${where}:\n  stats.writers: ${configured} writer slots cannot hold ${workers} workers of a serving and a starting generation ` +
          `(at least ${least}, ${wanted} to keep max-draining ${maxDraining} draining too): raise it or leave it out`,
      );
    }
    return { writers: configured, ...(configured - 1 > DEFAULT_CAPACITIES.generations ? { generations: Math.min(120, configured - 1) } : {}) };
  }
  if (wanted <= DEFAULT_CAPACITIES.writers) return {};
  if (wanted - 1 > 120) {
    throw new BatonError('ERR_CONFIG', `invalid configuration in ${where}:\n  workers: ${workers} workers of ${concurrentGenerations(maxDraining)} generations at once (max-draining ${maxDraining}) need ${wanted} stats writer slots; the segment holds at most 121: use fewer workers or a lower max-draining`);
  }
  return { writers: wanted, generations: wanted - 1 };
}
