// Who spends the machine's cores during each phase of a bench (issue #19: where does the
// throughput go while reloads come?). Samples /proc every SAMPLE_MS: the bench's own process (the
// load generator: its worker thread), the supervisor (HAProxy: its master) and its reapers, every
// generation process under it (standbys included), other processes of the system under test (HAProxy's
// upstream), and the whole machine (/proc/stat), so what other work on the machine took shows too.
// A generation's CPU up to its ready message (the SDK reports it: ReloadTiming.child.cpuMs) is its
// boot; what it uses after is serving. With the load generator's tally of responses by serving
// pid (load-worker.ts `identify`), that gives µs of CPU per request by a generation's age.
import fs from 'node:fs';
import { monotonicMs } from '../../shared/reload-timing.ts';
import { descendants } from '../../supervisor/os/proc-tree.ts';
import type { ServerTally } from './load-worker.ts';

/** USER_HZ: /proc's CPU times are in ticks of 10 ms on Linux. */
const TICK_MS = 10;
export const SAMPLE_MS = 100;
/** A generation's age (ms since its ready message) in bins, for µs per request while its JIT warms. */
export const AGE_EDGES_MS = [0, 250, 500, 1000, 2000, 4000];

export interface CpuSource {
  /** The supervisor (HAProxy: its master). Its descendants are its generations (HAProxy: workers), but for Baton's reapers (`baton-exec`), counted as the supervisor's. */
  supervisorPid(): number;
  /** Other processes of the system under test (HAProxy's upstream), counted as `upstream`. */
  upstreamPids?(): number[];
  /** A generation process's CPU (ms) when it said ready (its boot, a standby's ahead of time included), and when that was (monotonic ms); undefined: never ready. */
  ready(pid: number): { cpuMs: number; at: number } | undefined;
}

/** What a phase's CPU went to, in ms of CPU per second of the phase (2 cores = 2,000 ms/s). */
export interface CpuRoles {
  /** The bench's process: the load generator's worker thread (and the sampling itself). */
  load: number;
  /** The supervisor (HAProxy: master) and its reapers. */
  supervisor: number;
  /** Generation processes after their ready message: serving, then draining. */
  serving: number;
  /** Generation processes before their ready message: Node's boot and the app's import (a standby's boot too, whenever it came). */
  boot: number;
  /** HAProxy's upstream. */
  upstream: number;
  /** The machine's busy time not in any of the above: other work on the machine. */
  foreign: number;
  /** The machine's idle time. */
  idle: number;
}

interface Sample {
  t: number;
  load: number;
  supervisor: number;
  upstream: number;
  /** Cumulative CPU ms of each generation process seen. */
  gens: Map<number, number>;
  busy: number;
  total: number;
}

export interface CpuPhase {
  durationMs: number;
  perSec: CpuRoles;
  /** Generation processes that were booting or serving in the phase. */
  processes: number;
}

function readStat(pid: number): { comm: string; ms: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return { comm: stat.slice(stat.indexOf('(') + 1, close), ms: (Number(fields[11]) + Number(fields[12])) * TICK_MS };
  } catch {
    return undefined;
  }
}


/** The machine's busy and total time (ms, all CPUs) from /proc/stat's `cpu` line. */
function machineMs(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy: busy * TICK_MS, total: (busy + idle! + iowait!) * TICK_MS };
}

export class CpuAccount {
  private readonly source: CpuSource;
  private readonly samples: Sample[] = [];
  private readonly marks = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(source: CpuSource) {
    this.source = source;
  }

  start(): void {
    this.sample();
    this.timer ??= setInterval(() => this.sample(), SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  /** A sample now, named: a phase's CPU is between the mark of its name and the next mark. */
  mark(name: string): void {
    this.marks.set(name, this.sample());
  }

  private sample(): number {
    const self = process.cpuUsage();
    const sup = this.source.supervisorPid();
    let supervisor = readStat(sup)?.ms ?? NaN;
    const gens = new Map<number, number>();
    for (const c of descendants(sup)) {
      const s = readStat(c);
      if (!s) continue;
      if (s.comm === 'baton-exec') supervisor += s.ms;
      else gens.set(c, s.ms);
    }
    const upstream = (this.source.upstreamPids?.() ?? []).reduce((a, p) => a + (readStat(p)?.ms ?? 0), 0);
    const m = machineMs();
    this.samples.push({ t: monotonicMs(), load: (self.user + self.system) / 1000, supervisor, upstream, gens, ...m });
    return this.samples.length - 1;
  }

  /** When mark `name` was taken (monotonic ms). */
  markTime(name: string): number | undefined {
    const i = this.marks.get(name);
    return i === undefined ? undefined : this.samples[i]!.t;
  }

  /**
   * Between marks `from` and `to`, by the time since the latest generation became ready (in
   * `bucketMs` buckets up to `maxMs`): the 200 OK per second, and the CPU per second of new
   * generations' boot and of serving. Where in a reload's cycle the throughput goes.
   */
  cycle(from: string, to: string, tallies: Record<string, ServerTally>, binMs: number, bucketMs: number, maxMs: number): CycleBucket[] {
    const t0 = this.markTime(from);
    const t1 = this.markTime(to);
    const buckets: CycleBucket[] = Array.from({ length: Math.ceil(maxMs / bucketMs) + 1 }, (_, k) => ({ fromMs: k * bucketMs, rps: 0, bootPerSec: 0, servingPerSec: 0, ms: 0, cpuMs: 0 }));
    if (t0 === undefined || t1 === undefined) return buckets;
    const readies = Object.keys(tallies)
      .map((p) => this.source.ready(Number(p))?.at)
      .filter((a): a is number => a !== undefined && a > 0)
      .sort((a, b) => a - b);
    const bucketOf = (t: number): CycleBucket | undefined => {
      let latest: number | undefined;
      for (const r of readies) if (r <= t) latest = r;
      if (latest === undefined) return undefined;
      return buckets[Math.min(buckets.length - 1, Math.floor((t - latest) / bucketMs))];
    };
    const counts = new Map<number, number>();
    for (const t of Object.values(tallies)) t.counts.forEach((n, k) => counts.set(t.first + k, (counts.get(t.first + k) ?? 0) + n));
    for (let bin = Math.ceil(t0 / binMs); (bin + 1) * binMs <= t1; bin++) {
      const b = bucketOf((bin + 0.5) * binMs);
      if (!b) continue;
      b.rps += counts.get(bin) ?? 0;
      b.ms += binMs;
    }
    const i = this.marks.get(from)!;
    const j = this.marks.get(to)!;
    for (let k = i + 1; k <= j; k++) {
      const a = this.samples[k - 1]!;
      const z = this.samples[k]!;
      const b = bucketOf((a.t + z.t) / 2);
      if (!b) continue;
      for (const [pid, ms1] of z.gens) {
        const ms0 = a.gens.get(pid) ?? 0;
        const ready = this.source.ready(pid)?.cpuMs ?? Infinity;
        const boot = Math.min(ms1, ready) - Math.min(ms0, ready);
        b.bootPerSec += boot;
        b.servingPerSec += ms1 - ms0 - boot;
      }
      b.cpuMs += z.t - a.t;
    }
    for (const b of buckets) {
      b.rps = b.ms > 0 ? (b.rps * 1000) / b.ms : NaN;
      b.bootPerSec = b.cpuMs > 0 ? (b.bootPerSec * 1000) / b.cpuMs : NaN;
      b.servingPerSec = b.cpuMs > 0 ? (b.servingPerSec * 1000) / b.cpuMs : NaN;
    }
    return buckets;
  }

  /** The CPU of the phase between mark `from` and mark `to`. */
  phase(from: string, to: string): CpuPhase | undefined {
    const i = this.marks.get(from);
    const j = this.marks.get(to);
    if (i === undefined || j === undefined || j <= i) return undefined;
    const a = this.samples[i]!;
    const b = this.samples[j]!;
    const seconds = (b.t - a.t) / 1000;
    let serving = 0;
    let boot = 0;
    let processes = 0;
    // Every process seen between the marks: its CPU at the first mark (0 if it started since) and its last value before the second.
    const last = new Map<number, number>();
    for (let k = i; k <= j; k++) for (const [pid, ms] of this.samples[k]!.gens) last.set(pid, ms);
    for (const [pid, ms1] of last) {
      const ms0 = a.gens.get(pid) ?? 0;
      if (ms1 <= ms0) continue;
      processes += 1;
      const ready = this.source.ready(pid)?.cpuMs ?? Infinity;
      const b0 = Math.min(ms0, ready);
      const b1 = Math.min(ms1, ready);
      boot += b1 - b0;
      serving += ms1 - ms0 - (b1 - b0);
    }
    const load = b.load - a.load;
    const supervisor = b.supervisor - a.supervisor;
    const upstream = b.upstream - a.upstream;
    const busy = b.busy - a.busy;
    const idle = b.total - a.total - busy;
    const foreign = Math.max(0, busy - load - supervisor - upstream - serving - boot);
    const per = (x: number): number => x / seconds;
    return { durationMs: b.t - a.t, processes, perSec: { load: per(load), supervisor: per(supervisor), serving: per(serving), boot: per(boot), upstream: per(upstream), foreign: per(foreign), idle: per(idle) } };
  }

  /**
   * µs of a generation's serving CPU per 200 OK it answered, by its age (since its ready message),
   * over the generations that became ready between marks `from` and `to`, each followed until it
   * exits or mark `until`. `tallies`: the load generator's responses by pid, bins of `binMs`.
   */
  byAge(from: string, to: string, until: string, tallies: Record<string, ServerTally>, binMs: number, edgesMs: number[]): AgeBin[] {
    const i = this.marks.get(from);
    const j = this.marks.get(to);
    const u = this.marks.get(until);
    const bins: AgeBin[] = edgesMs.map((e, k) => ({ fromMs: e, toMs: edgesMs[k + 1] ?? Infinity, cpuMs: 0, requests: 0, generations: 0 }));
    if (i === undefined || j === undefined || u === undefined) return bins;
    const t0 = this.samples[i]!.t;
    const t1 = this.samples[j]!.t;
    const binOf = (age: number): AgeBin | undefined => bins.find((b) => age >= b.fromMs && age < b.toMs);
    const pids = new Set<number>();
    for (let k = i; k <= u; k++) for (const pid of this.samples[k]!.gens.keys()) pids.add(pid);
    for (const pid of pids) {
      const ready = this.source.ready(pid);
      if (!ready || ready.at < t0 || ready.at >= t1) continue;
      const seen = new Set<AgeBin>();
      let prev: { t: number; ms: number } | undefined;
      for (let k = i; k <= u; k++) {
        const ms = this.samples[k]!.gens.get(pid);
        if (ms === undefined) continue;
        const t = this.samples[k]!.t;
        // Serving CPU only: the part of the interval's CPU after the ready message.
        if (prev && t > ready.at) {
          const d = ms - Math.max(prev.ms, ready.cpuMs);
          const bin = binOf((prev.t + t) / 2 - ready.at);
          if (bin && d > 0) bin.cpuMs += d;
        }
        prev = { t, ms };
      }
      const tally = tallies[String(pid)];
      if (!tally) continue;
      tally.counts.forEach((n, k) => {
        const bin = binOf((tally.first + k + 0.5) * binMs - ready.at);
        if (!bin) return;
        bin.requests += n;
        seen.add(bin);
      });
      for (const b of seen) b.generations += 1;
    }
    return bins;
  }
}

export interface CycleBucket {
  /** Time since the latest generation's ready message, from (ms). */
  fromMs: number;
  /** 200 OK per second in this bucket. */
  rps: number;
  bootPerSec: number;
  servingPerSec: number;
  /** Time spent in this bucket, for pooling (requests; CPU samples). */
  ms: number;
  cpuMs: number;
}

/** Cycle buckets pooled over rounds, weighted by the time each round spent in them. */
export function poolCycle(parts: CycleBucket[][]): CycleBucket[] {
  if (parts.length === 0) return [];
  const w = (x: number, m: number): number => (Number.isFinite(x) ? x * m : 0);
  return parts[0]!.map((b, k) => {
    const all = parts.map((p) => p[k]!);
    const ms = all.reduce((a, q) => a + q.ms, 0);
    const cpuMs = all.reduce((a, q) => a + q.cpuMs, 0);
    return {
      fromMs: b.fromMs,
      ms,
      cpuMs,
      rps: all.reduce((a, q) => a + w(q.rps, q.ms), 0) / ms,
      bootPerSec: all.reduce((a, q) => a + w(q.bootPerSec, q.cpuMs), 0) / cpuMs,
      servingPerSec: all.reduce((a, q) => a + w(q.servingPerSec, q.cpuMs), 0) / cpuMs,
    };
  });
}

export interface AgeBin {
  fromMs: number;
  toMs: number;
  cpuMs: number;
  requests: number;
  /** Generations that answered requests in this bin. */
  generations: number;
}

/** Phases' CPU pooled: each role's ms per second weighted by the phases' durations. */
export function poolCpu(parts: (CpuPhase | undefined)[]): CpuPhase | undefined {
  const ps = parts.filter((p): p is CpuPhase => p !== undefined);
  if (ps.length === 0) return undefined;
  const ms = ps.reduce((a, p) => a + p.durationMs, 0);
  const keys = Object.keys(ps[0]!.perSec) as (keyof CpuRoles)[];
  const perSec = Object.fromEntries(keys.map((k) => [k, ps.reduce((a, p) => a + p.perSec[k] * p.durationMs, 0) / ms])) as unknown as CpuRoles;
  return { durationMs: ms, perSec, processes: ps.reduce((a, p) => a + p.processes, 0) };
}

/** Age bins added up over rounds. */
export function poolAge(parts: AgeBin[][]): AgeBin[] {
  if (parts.length === 0) return [];
  return parts[0]!.map((b, k) => ({ ...b, cpuMs: parts.reduce((a, p) => a + (p[k]?.cpuMs ?? 0), 0), requests: parts.reduce((a, p) => a + (p[k]?.requests ?? 0), 0), generations: parts.reduce((a, p) => a + (p[k]?.generations ?? 0), 0) }));
}
