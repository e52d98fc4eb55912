// Benchmark of shared-memory stats (shared/stats). Not a test: it prints numbers.
//   node --disable-warning=ExperimentalWarning bench/stats.ts
// 1. counter.inc() against a plain in-process `obj.n += 1`, same loop, same run (ratio of medians);
// 2. two processes incrementing one counter at once: per-op cost and the exact total; plus the
//    layout check behind writer-major slots (adjacent 8-byte slots vs one writer region apart);
// 3. snapshot of 10,000 stats (cold: first read decodes descriptors; warm).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mmap } from '../shared/native/native.ts';
import { computeLayout, createSegment, openSegment, toPrometheus, type Counter, type Stats } from '../shared/stats/index.ts';

const SELF = fileURLToPath(import.meta.url);
const now = () => performance.now();

function stats(xs: number[]): { median: number; min: number; max: number; p25: number; p75: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
  return { median: at(0.5), min: s[0]!, max: s.at(-1)!, p25: at(0.25), p75: at(0.75) };
}

function line(label: string, unit: string, xs: number[], digits = 2): string {
  const s = stats(xs);
  const f = (v: number) => v.toFixed(digits);
  return `  ${label.padEnd(34)} median ${f(s.median)} ${unit}  [IQR ${f(s.p25)}–${f(s.p75)}, min ${f(s.min)}, max ${f(s.max)}]\n    samples: ${xs.map(f).join(' ')}`;
}

// ---- worker processes (contended case) ----
interface WorkerArgs {
  kind: 'stats' | 'raw';
  dir: string;
  instance: string;
  writer: number;
  count: number;
  /** raw: slot spacing in Float64s (1 = adjacent; regionCells = the library's writer regions). */
  spacing?: number;
  file?: string;
}

function value(s: Stats, name: string): number {
  const x = s.sample(name);
  return x && x.kind !== 'histogram' ? x.value : 0;
}

function worker(args: WorkerArgs): void {
  const s = openSegment({ dir: args.dir, instance: args.instance, writer: args.writer });
  let loop: () => void;
  if (args.kind === 'stats') {
    const counter = s.counter('bench.contended');
    loop = () => {
      for (let i = 0; i < args.count; i++) counter.inc();
    };
  } else {
    const fd = fs.openSync(args.file!, 'r+');
    const f64 = new Float64Array(mmap(fd, fs.fstatSync(fd).size));
    fs.closeSync(fd);
    const index = args.writer * args.spacing!;
    loop = () => {
      for (let i = 0; i < args.count; i++) f64[index]! += 1;
    };
  }
  process.stdout.write('ready\n');
  while (value(s, 'bench.start') < args.writer) {} // the start gauge is bumped to each run's number
  const t0 = now();
  loop();
  const t1 = now();
  const epoch = performance.timeOrigin;
  process.stdout.write(`${JSON.stringify({ ms: t1 - t0, from: epoch + t0, to: epoch + t1 })}\n`);
}

interface Timing {
  ms: number;
  from: number;
  to: number;
}

/** Per-op ns of each process, and how much of the longer loop both were running (0..1). */
async function contended(dir: string, instance: string, kind: 'stats' | 'raw', count: number, spacing = 1): Promise<{ ns: number[]; overlap: number }> {
  const file = path.join(dir, 'raw');
  if (kind === 'raw') {
    fs.writeFileSync(file, Buffer.alloc(Math.ceil((3 * spacing * 8) / 4096) * 4096));
  }
  const owner = createSegment({ dir, instance });
  const start = owner.gauge('bench.start');
  const children = [1, 2].map((writer) => {
    const args: WorkerArgs = { kind, dir, instance, writer, count, spacing, file };
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', SELF, '--worker', JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const ready = new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => ((out += d), out.includes('ready') && resolve())));
    const done = new Promise<Timing>((resolve, reject) =>
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.split('\n')[1]!) as Timing) : reject(new Error(`worker exit ${code}`)))),
    );
    return { ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  start.set(2); // both writers (1 and 2) see >= their number
  const [a, b] = await Promise.all(children.map((c) => c.done));
  if (kind === 'stats') {
    const total = owner.sample('bench.contended');
    if (!total || total.kind === 'histogram' || total.value !== 2 * count) throw new Error(`lost updates: ${JSON.stringify(total)}`);
  } else {
    const f64 = new Float64Array(new Uint8Array(fs.readFileSync(file)).buffer);
    if (f64[spacing]! + f64[2 * spacing]! !== 2 * count) throw new Error('raw total wrong');
  }
  owner.destroy();
  fs.rmSync(file, { force: true });
  const overlap = Math.max(0, Math.min(a!.to, b!.to) - Math.max(a!.from, b!.from)) / Math.max(a!.ms, b!.ms);
  return { ns: [a!, b!].map((t) => (t.ms * 1e6) / count), overlap };
}

// ---- main ----
const plain = { n: 0 };
function runPlain(n: number): void {
  for (let i = 0; i < n; i++) plain.n += 1;
}
function runCounter(c: Counter, n: number): void {
  for (let i = 0; i < n; i++) c.inc();
}
// The same increments with a little work between them (an xorshift step, as a request handler
// does something between two counts): the tight loops above measure one memory-carried
// dependency chain (load, add, store the same cell back to back), which V8 shortens for a JS
// field by keeping it in a register but cannot for a typed-array element; with work in between,
// out-of-order execution overlaps the chain and what is left is the cost an app sees.
let sink = 1;
function workPlain(n: number): void {
  let x = sink;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    plain.n += 1;
  }
  sink = x;
}
function workCounter(c: Counter, n: number): void {
  let x = sink;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    c.inc();
  }
  sink = x;
}

async function main(): Promise<void> {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`machine: ${cpu}, ${os.availableParallelism()} cores, Node ${process.version}, ${process.platform} ${process.arch}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const dir = fs.mkdtempSync('/dev/shm/baton-bench-');
  try {
    // 1. one process
    const owner = createSegment({ dir, instance: 'bench' });
    const counter = owner.counter('bench.single');
    const OPS = 10_000_000;
    const SAMPLES = 15;
    for (let i = 0; i < 3; i++) {
      runPlain(OPS);
      runCounter(counter, OPS);
    }
    const plainNs: number[] = [];
    const counterNs: number[] = [];
    for (let s = 0; s < SAMPLES; s++) {
      // Alternate which goes first so drift in machine load hits both alike.
      const order = s % 2 === 0 ? ['plain', 'counter'] : ['counter', 'plain'];
      for (const which of order) {
        const t0 = now();
        if (which === 'plain') runPlain(OPS);
        else runCounter(counter, OPS);
        (which === 'plain' ? plainNs : counterNs).push(((now() - t0) * 1e6) / OPS);
      }
    }
    const total = owner.sample('bench.single');
    if (!total || total.kind === 'histogram' || total.value !== (SAMPLES + 3) * OPS) throw new Error('single-process total wrong');
    console.log(`  load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`\nincrement, one process (${OPS.toLocaleString('en')} ops per sample, ${SAMPLES} samples, ns/op):`);
    console.log(line('plain obj.n += 1', 'ns/op', plainNs, 3));
    console.log(line('stats counter.inc()', 'ns/op', counterNs, 3));
    const ratios = plainNs.map((p, i) => counterNs[i]! / p);
    console.log(line('ratio inc()/plain (per sample)', '×', ratios));
    console.log(`  ratio of medians: ${(stats(counterNs).median / stats(plainNs).median).toFixed(2)}×`);

    // 1b. the same, with work between increments
    for (let i = 0; i < 3; i++) {
      workPlain(OPS);
      workCounter(counter, OPS);
    }
    const workPlainNs: number[] = [];
    const workCounterNs: number[] = [];
    for (let s = 0; s < SAMPLES; s++) {
      const order = s % 2 === 0 ? ['plain', 'counter'] : ['counter', 'plain'];
      for (const which of order) {
        const t0 = now();
        if (which === 'plain') workPlain(OPS);
        else workCounter(counter, OPS);
        (which === 'plain' ? workPlainNs : workCounterNs).push(((now() - t0) * 1e6) / OPS);
      }
    }
    console.log(`\nincrement between other work (an xorshift step per iteration), same samples:`);
    console.log(line('work + plain obj.n += 1', 'ns/op', workPlainNs, 3));
    console.log(line('work + stats counter.inc()', 'ns/op', workCounterNs, 3));
    const workRatios = workPlainNs.map((p, i) => workCounterNs[i]! / p);
    console.log(line('ratio (per sample)', '×', workRatios));
    console.log(`  ratio of medians: ${(stats(workCounterNs).median / stats(workPlainNs).median).toFixed(2)}×`);
    console.log(`  load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    owner.destroy();

    // 2. two processes at once
    const COUNT = 20_000_000;
    const REGION = computeLayout().regionCells; // the library's distance between two writers' slots
    const RUNS = 5;
    const perOp: number[] = [];
    const rawAdjacent: number[] = [];
    const rawApart: number[] = [];
    const overlaps: number[] = [];
    const alone: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const run = await contended(dir, `bench-c${r}`, 'stats', COUNT);
      perOp.push(...run.ns);
      overlaps.push(run.overlap * 100);
      rawAdjacent.push(...(await contended(dir, `bench-a${r}`, 'raw', COUNT, 1)).ns);
      rawApart.push(...(await contended(dir, `bench-b${r}`, 'raw', COUNT, REGION)).ns);
      const solo = createSegment({ dir, instance: `bench-s${r}` });
      const c = solo.counter('bench.alone');
      const t0 = now();
      runCounter(c, COUNT);
      alone.push(((now() - t0) * 1e6) / COUNT);
      solo.destroy();
    }
    console.log(`\ncontended: two processes, one counter, ${COUNT.toLocaleString('en')} inc() each, ${RUNS} runs (one sample per process per run):`);
    console.log(line('stats counter.inc(), 2 writers', 'ns/op', perOp, 3));
    console.log(line('same loop, this process alone', 'ns/op', alone, 3));
    console.log(line('time both loops ran at once', '%', overlaps, 0));
    console.log(`  total exact in every run: ${(2 * COUNT).toLocaleString('en')}`);
    console.log('  layout check, raw Float64Array += 1 in a shared mapping, 2 processes:');
    console.log(line('slots adjacent (cell-major)', 'ns/op', rawAdjacent, 3));
    console.log(line(`slots ${(REGION * 8) / 1024} KiB apart (writer-major)`, 'ns/op', rawApart, 3));

    // 3. snapshot of 10,000 stats
    const big = createSegment({ dir, instance: 'bench-snap' });
    for (let i = 0; i < 10_000; i++) big.counter(`bench.snap.c${i}`, { shard: String(i % 16) }).inc(i);
    const cold: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = now();
      const reader = openSegment({ dir, instance: 'bench-snap' }); // a fresh mapping decodes 10,000 descriptors
      const snap = reader.snapshot();
      cold.push(now() - t0);
      if (snap.length !== 10_001) throw new Error(`snapshot has ${snap.length} stats`);
    }
    const warm: number[] = [];
    const text: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = now();
      const snap = big.snapshot();
      warm.push(now() - t0);
      const t1 = now();
      toPrometheus(snap);
      text.push(now() - t1);
    }
    console.log(`\nsnapshot of 10,000 stats (${big.files.length} segments, 16 writer slots + retired each):`);
    console.log(line('cold (openSegment + snapshot)', 'ms', cold));
    console.log(line('warm', 'ms', warm));
    console.log(line('toPrometheus of it', 'ms', text));
    big.destroy();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--worker') worker(JSON.parse(process.argv[3]!) as WorkerArgs);
else await main();
