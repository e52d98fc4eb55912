// Benchmark of memory sampling overhead. Not a test: it prints numbers.
//   node --disable-warning=ExperimentalWarning bench/memory.ts [--phase-seconds 15] [--rounds 2]
// One run, interleaved phases (off, default 5s, 1s, 250ms) × rounds, each a fresh supervisor running
// test/fixtures/memory-app.ts under the same keep-alive HTTP load from this process. Per phase:
// CPU time of the supervisor and of the generation (from /proc/<pid>/stat, over the measured span),
// requests/s and latency percentiles.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { controlRequest } from '../supervisor/cli/control-client.ts';
import type { StatusSnapshot } from '../supervisor/core/supervisor.ts';
import { loadNative, sampleMemory } from '../child/memory/memory-reporter.ts';
import { procMemoryProbe } from '../supervisor/memory/proc.ts';
import { summarize, type MemoryPoint } from '../supervisor/memory/history.ts';
import { detectLeak } from '../supervisor/memory/leak-detect.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { 'phase-seconds': { type: 'string' }, rounds: { type: 'string' }, clients: { type: 'string' } } });
const PHASE_MS = Number(values['phase-seconds'] ?? 15) * 1000;
const ROUNDS = Number(values.rounds ?? 2);
const CLIENTS = Number(values.clients ?? 4);
const WARMUP_MS = 2000;
const INTERVALS: [string, number][] = [['off', 0], ['5s (default)', 5000], ['1s', 1000], ['250ms', 250]];
/** USER_HZ: the unit of utime/stime in /proc/PID/stat on Linux. */
const TICK = 100;

function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

interface PhaseResult {
  label: string;
  supervisorCpu: number;
  childCpu: number;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
}

async function phase(label: string, interval: number): Promise<PhaseResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-mem-'));
  fs.chmodSync(dir, 0o700);
  const statsDir = fs.mkdtempSync('/dev/shm/baton-bench-mem-');
  const config = path.join(dir, 'baton.yaml');
  fs.writeFileSync(
    config,
    stringify({
      name: 'bench',
      command: [process.execPath, '--disable-warning=ExperimentalWarning', path.join(ROOT, 'test/fixtures/memory-app.ts')],
      listeners: [{ name: 'http', address: '127.0.0.1:0' }],
      'log-level': 'warn',
      memory: { interval },
    }),
  );
  const socket = path.join(dir, 'run', 'bench.sock');
  const sup: ChildProcess = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(ROOT, 'bin/baton'), 'run', '--config', config], {
    env: { ...process.env, BATON_RUNTIME_DIR: path.join(dir, 'run'), BATON_STATS_DIR: statsDir },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    let status: StatusSnapshot | undefined;
    const deadline = Date.now() + 20_000;
    while (!status || status.active === null) {
      if (Date.now() > deadline) throw new Error(`phase ${label}: no active generation`);
      await new Promise((r) => setTimeout(r, 100));
      status = await controlRequest(socket, 'GET', '/status').then((r) => r.body as StatusSnapshot).catch(() => undefined);
    }
    const child = status.generations.find((g) => g.state === 'active')!.pid;
    const address = status.listeners[0]!.address;
    const port = Number(address.slice(address.lastIndexOf(':') + 1));
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
    const latencies: number[] = [];
    let measuring = false;
    let stop = false;
    const client = async (): Promise<void> => {
      while (!stop) {
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
            res.resume();
            res.on('end', resolve);
          }).on('error', reject);
        });
        if (measuring) latencies.push(performance.now() - t0);
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const s0 = cpuMs(sup.pid!);
    const c0 = cpuMs(child);
    const t0 = performance.now();
    measuring = true;
    await new Promise((r) => setTimeout(r, PHASE_MS));
    measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    const result = {
      supervisorCpu: (cpuMs(sup.pid!) - s0) / seconds,
      childCpu: (cpuMs(child) - c0) / seconds,
    };
    stop = true;
    await Promise.all(clients);
    agent.destroy();
    latencies.sort((a, b) => a - b);
    return {
      label,
      ...result,
      rps: latencies.length / seconds,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      p999: percentile(latencies, 0.999),
    };
  } finally {
    sup.kill('SIGTERM');
    await new Promise((r) => sup.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(statsDir, { recursive: true, force: true });
  }
}

/** Median µs of `fn` over `n` calls, in 5 batches. */
function micro(fn: () => void, n: number): number {
  const batches: number[] = [];
  for (let b = 0; b < 5; b++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    batches.push(((performance.now() - t0) * 1000) / n);
  }
  return batches.sort((a, b) => a - b)[2]!;
}

const addon = await loadNative();
const childSampleUs = micro(() => sampleMemory(addon), 2000);
const procReadUs = micro(() => procMemoryProbe.read(process.pid), 2000);
const statmReadUs = micro(() => procMemoryProbe.rss!(process.pid), 2000);
// The leak watch on a full default window (10 min at 5 s: 120 points, a major GC every sample)
// against the least-squares RSS fit it replaced, in the same run.
const MiB = 1024 * 1024;
const windowPoints: MemoryPoint[] = Array.from({ length: 120 }, (_, i) => ({
  t: i * 5000,
  rss: (100 + i * 0.1 + (i % 3)) * MiB,
  heapUsed: (40 + (i % 7) * 3) * MiB,
  external: 8 * MiB,
  mallocInUse: 30 * MiB,
  v8Used: 40 * MiB,
  v8Committed: 60 * MiB,
  mallocFree: 10 * MiB,
  gcMajorCount: i + 1,
  gcAt: i * 5000,
  gcHeapUsed: (40 + i * 0.05) * MiB,
  gcExternal: 8 * MiB,
  gcMallocInUse: 30 * MiB,
  connections: 50,
}));
const settings = { minSlope: MiB, minGrowth: 4 * MiB, minR2: 0.8, loadTolerance: 0.5, window: 600_000 };
const leakWatchUs = micro(() => detectLeak(windowPoints, settings), 200);
const rssFitUs = micro(() => summarize(windowPoints, 'rss'), 2000);

const results: PhaseResult[] = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const [label, interval] of INTERVALS) {
    const r = await phase(label, interval);
    results.push(r);
    process.stderr.write(`round ${round + 1} ${label}: ${JSON.stringify(r)}\n`);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
console.log(`memory sampling overhead — ${os.cpus().length} CPUs, node ${process.version}, ${CLIENTS} keep-alive clients, ${ROUNDS} rounds × ${PHASE_MS / 1000}s per phase (medians over rounds)`);
console.log(`one child sample (memoryUsage + heap spaces + mallinfo2 + malloc_info, this process): ${childSampleUs.toFixed(1)} µs`);
console.log(`one supervisor read of /proc/PID/smaps_rollup (this process): ${procReadUs.toFixed(1)} µs`);
console.log(`one limit-watch read of /proc/PID/statm: ${statmReadUs.toFixed(1)} µs (${(statmReadUs / procReadUs).toFixed(3)}× smaps_rollup)`);
console.log(`leak watch on a 120-point window: ${leakWatchUs.toFixed(1)} µs (${(leakWatchUs / rssFitUs).toFixed(1)}× the least-squares RSS fit it replaced, ${rssFitUs.toFixed(1)} µs)`);
console.log('| interval | supervisor CPU ms/s | generation CPU ms/s | requests/s | p50 ms | p99 ms | p99.9 ms |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const [label] of INTERVALS) {
  const rs = results.filter((r) => r.label === label);
  const m = (f: (r: PhaseResult) => number, d = 2) => median(rs.map(f)).toFixed(d);
  console.log(`| ${label} | ${m((r) => r.supervisorCpu, 1)} | ${m((r) => r.childCpu, 1)} | ${m((r) => r.rps, 0)} | ${m((r) => r.p50, 3)} | ${m((r) => r.p99, 3)} | ${m((r) => r.p999, 3)} |`);
}
