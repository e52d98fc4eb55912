import fs from 'node:fs';
import os from 'node:os';

export interface Summary {
  samples: number;
  median: number;
  p10: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** Percentile by linear interpolation between closest ranks (p in 0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function summarize(values: number[]): Summary {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const mean = s.length === 0 ? NaN : s.reduce((a, b) => a + b, 0) / s.length;
  const r = (n: number): number => Math.round(n * 100) / 100;
  return {
    samples: s.length,
    median: r(percentile(s, 50)),
    p10: r(percentile(s, 10)),
    p90: r(percentile(s, 90)),
    p99: r(percentile(s, 99)),
    min: r(s[0] ?? NaN),
    max: r(s[s.length - 1] ?? NaN),
    mean: r(mean),
  };
}

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  kernel: string;
  os: string;
  arch: string;
  haproxy?: string;
  /** 1-minute load average when the bench started: other work on the machine skews every figure. */
  loadavgAtStart: number;
}

export function machine(haproxy?: string): Machine {
  let distro = os.type();
  try {
    distro = /^PRETTY_NAME="?([^"\n]+)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? distro;
  } catch {
    // keep os.type()
  }
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    kernel: os.release(),
    os: distro,
    arch: process.arch,
    ...(haproxy ? { haproxy } : {}),
    loadavgAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}
