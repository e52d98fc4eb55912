// Benchmark of shared-memory stats (shared/stats). Not a test: it prints numbers.
//   node --disable-warning=ExperimentalWarning bench/stats.ts
// 1. counter.inc() of a generation (the handle an app under Baton gets) against a plain
//    in-process `obj.n += 1`, same loop shape, interleaved in the same run; also the supervisor's
//    counter (read-modify-write: writer 0 is shared during an upgrade) and a labelled family.
//    Timed by this process's CPU time (what the loop costs; a loaded machine also deschedules it,
//    which wall time counts) and by wall time;
// 2. two processes incrementing one counter at once: per-op cost and the exact total; plus the
//    layout check behind writer-major slots (adjacent 8-byte slots vs one writer region apart);
// 3. snapshot of 10,000 stats (cold: first read decodes descriptors; warm);
// 4. the prom-client bridge: prom-client's inc()/observe() on their own and bridged (written
//    through to the segment on every call), same run;
// 5. the owner retiring a gone generation's request stats (5 counters, a 44-bound histogram) and
//    its next snapshot, 2,000 generations in a row over 40 other stats (`--retire`: only this).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mmap } from '../shared/native/native.ts';
import { computeLayout, createSegment, openSegment, toPrometheus, type Counter, type Stats } from '../shared/stats/index.ts';
import client from 'prom-client';
import { bridgePromClient } from '../child/prom-client-bridge.ts';
import { StatsFront, type Family } from '../child/stats/stats-api.ts';

const SELF = fileURLToPath(import.meta.url);
const now = () => performance.now();
/** This process's CPU time in ms (user + system; microsecond resolution). */
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

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
// Each measured loop is its own function, called with one handle class only, so every call site
// stays monomorphic, as an app's own call sites are.
const plain = { n: 0 };
function runPlain(n: number): void {
  for (let i = 0; i < n; i++) plain.n += 1;
}
function runCounter(c: Counter, n: number): void {
  for (let i = 0; i < n; i++) c.inc();
}
function runShared(c: Counter, n: number): void {
  for (let i = 0; i < n; i++) c.inc();
}
function runLabelled(f: Family<Counter>, n: number): void {
  for (let i = 0; i < n; i++) f.labels('/api').inc();
}
function promInc(c: client.Counter, n: number): void {
  for (let i = 0; i < n; i++) c.inc({ route: '/api' });
}
function promObserve(h: client.Histogram, n: number): void {
  for (let i = 0; i < n; i++) h.observe(0.05);
}
// The same increments with a little work between them (an xorshift step, as a request handler
// does something between two counts).
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

interface Timed {
  cpu: number[];
  wall: number[];
}

/** Runs every loop once per round, in an order that rotates between rounds so drift in machine load hits them alike; ns/op per loop and round. */
function rounds(loops: Record<string, () => void>, ops: number, samples: number, warmup = 3): Record<string, Timed> {
  const names = Object.keys(loops);
  for (let w = 0; w < warmup; w++) for (const name of names) loops[name]!();
  const out: Record<string, Timed> = Object.fromEntries(names.map((n) => [n, { cpu: [], wall: [] }]));
  for (let r = 0; r < samples; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length]!;
      const c0 = cpu();
      const t0 = now();
      loops[name]!();
      const t1 = now();
      const c1 = cpu();
      out[name]!.cpu.push(((c1 - c0) * 1e6) / ops);
      out[name]!.wall.push(((t1 - t0) * 1e6) / ops);
    }
  }
  return out;
}

function printRatios(label: string, of: Timed, base: Timed): void {
  for (const clock of ['cpu', 'wall'] as const) {
    const ratios = base[clock].map((b, i) => of[clock][i]! / b);
    console.log(line(`${label} (${clock}, per round)`, '×', ratios));
    console.log(`    ratio of medians (${clock}): ${(stats(of[clock]).median / stats(base[clock]).median).toFixed(2)}×`);
  }
}

/** 5: what the supervisor spends per reload on retirement (shared/stats/reclaim.ts). */
function retirement(dir: string): void {
  const owner = createSegment({ dir, instance: 'bench-retire' });
  for (let i = 0; i < 40; i++) owner.gauge(`bench.retire.g${i}`, { writer: String(i % 2) }).set(i);
  const bounds = Array.from({ length: 44 }, (_, i) => i + 1);
  const ms: number[] = [];
  const GENERATIONS = 2_000;
  for (let g = 1; g <= GENERATIONS; g++) {
    const gen = openSegment({ dir, instance: 'bench-retire', writer: 1 });
    for (const c of ['1xx', '2xx', '3xx', '4xx', '5xx']) gen.counter('baton.http.requests', { generation: String(g), code_class: c }).inc();
    gen.histogram('baton.http.request_ms', bounds, { generation: String(g) }).record(3);
    owner.retireWriter(1);
    const t0 = now();
    if (owner.retireGeneration(g) !== 6) throw new Error(`generation ${g}: not 6 stats retired`);
    owner.snapshot(); // the next scrape re-reads the entries that changed
    ms.push(now() - t0);
  }
  const s = [...ms].sort((a, b) => a - b);
  console.log(`\nretiring a generation's 6 request stats + the next snapshot (${GENERATIONS.toLocaleString('en')} generations in a row, 40 other stats):`);
  const us = (q: number) => (s[Math.floor(q * (s.length - 1))]! * 1000).toFixed(0);
  console.log(`  retireGeneration + snapshot: median ${us(0.5)} µs [IQR ${us(0.25)}–${us(0.75)}], p99 ${us(0.99)} µs (wall time)`);
  console.log(`  segment afterwards: ${JSON.stringify(owner.usage())}`);
  owner.destroy();
}

async function main(): Promise<void> {
  const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`machine: ${cpuModel}, ${os.availableParallelism()} cores, Node ${process.version} (V8 ${process.versions.v8}), ${process.platform} ${process.arch}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const dir = fs.mkdtempSync('/dev/shm/baton-bench-');
  try {
    // 1. one process: a generation's mapping (writer 1) beside the supervisor's (writer 0)
    const owner = createSegment({ dir, instance: 'bench' });
    const generation = openSegment({ dir, instance: 'bench', writer: 1 });
    const counter = generation.counter('bench.single');
    const shared = owner.counter('bench.shared');
    const family = new StatsFront(() => generation).counter('bench.labelled', { help: 'A labelled family.', labels: ['route'] }) as Family<Counter>;
    const OPS = 10_000_000;
    const SAMPLES = 21;
    const WARMUP = 3;
    const tight = rounds(
      {
        plain: () => runPlain(OPS),
        counter: () => runCounter(counter, OPS),
        shared: () => runShared(shared, OPS),
        labelled: () => runLabelled(family, OPS),
      },
      OPS,
      SAMPLES,
      WARMUP,
    );
    const expected = (SAMPLES + WARMUP) * OPS;
    for (const name of ['bench.single', 'bench.shared']) {
      const total = owner.sample(name);
      if (!total || total.kind === 'histogram' || total.value !== expected) throw new Error(`${name}: total ${JSON.stringify(total)}, expected ${expected}`);
    }
    console.log(`  load after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`\nincrement, one process (${OPS.toLocaleString('en')} ops per sample, ${SAMPLES} rounds after ${WARMUP} warm-up, ns/op):`);
    for (const clock of ['cpu', 'wall'] as const) {
      console.log(` ${clock} time:`);
      console.log(line('plain obj.n += 1', 'ns/op', tight.plain![clock], 3));
      console.log(line("counter.inc(), a generation's", 'ns/op', tight.counter![clock], 3));
      console.log(line("counter.inc(), the supervisor's", 'ns/op', tight.shared![clock], 3));
      console.log(line("family.labels('/api').inc()", 'ns/op', tight.labelled![clock], 3));
    }
    printRatios("generation's inc()/plain", tight.counter!, tight.plain!);
    printRatios("supervisor's inc()/plain", tight.shared!, tight.plain!);
    printRatios('labels().inc()/plain', tight.labelled!, tight.plain!);
    console.log(`  totals exact: ${expected.toLocaleString('en')} in each counter`);

    // 1b. the same, with work between increments
    const work = rounds({ plain: () => workPlain(OPS), counter: () => workCounter(counter, OPS) }, OPS, SAMPLES, WARMUP);
    console.log(`\nincrement between other work (an xorshift step per iteration), ns/op:`);
    for (const clock of ['cpu', 'wall'] as const) {
      console.log(` ${clock} time:`);
      console.log(line('work + plain obj.n += 1', 'ns/op', work.plain![clock], 3));
      console.log(line('work + counter.inc()', 'ns/op', work.counter![clock], 3));
    }
    printRatios('work: inc()/plain', work.counter!, work.plain!);
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
      const c = openSegment({ dir, instance: `bench-s${r}`, writer: 1 }).counter('bench.alone'); // as the workers
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

    // 4. the prom-client bridge (the SDK's own segment: private here, a generation's under Baton)
    const bare = new client.Registry();
    const bridged = new client.Registry();
    const mk = (r: client.Registry, p: string) => ({
      counter: new client.Counter({ name: `${p}_hits_total`, help: 'Hits.', labelNames: ['route'], registers: [r] }),
      histogram: new client.Histogram({ name: `${p}_seconds`, help: 'Latency.', buckets: [0.01, 0.1, 1], registers: [r] }),
    });
    const b = mk(bare, 'bench_bare');
    const w = mk(bridged, 'bench_bridged');
    bridgePromClient(bridged);
    const PC_OPS = 1_000_000;
    const pc = rounds(
      {
        bareInc: () => promInc(b.counter, PC_OPS),
        bridgedInc: () => promInc(w.counter, PC_OPS),
        bareObserve: () => promObserve(b.histogram, PC_OPS),
        bridgedObserve: () => promObserve(w.histogram, PC_OPS),
      },
      PC_OPS,
      9,
      2,
    );
    console.log(`\nprom-client bridge (${PC_OPS.toLocaleString('en')} calls per sample, 9 rounds, cpu time, ns/op):`);
    console.log(line("counter.inc({ route }), prom-client's own", 'ns/op', pc.bareInc!.cpu, 1));
    console.log(line('the same, bridged (written through)', 'ns/op', pc.bridgedInc!.cpu, 1));
    console.log(line("histogram.observe(v), prom-client's own", 'ns/op', pc.bareObserve!.cpu, 1));
    console.log(line('the same, bridged', 'ns/op', pc.bridgedObserve!.cpu, 1));

    // 5. retirement
    retirement(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--worker') worker(JSON.parse(process.argv[3]!) as WorkerArgs);
else if (process.argv[2] === '--retire') {
  const dir = fs.mkdtempSync('/dev/shm/baton-bench-');
  try {
    retirement(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
} else await main();
