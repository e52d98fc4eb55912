// A new process's first seconds under load: µs of CPU per request by its age, for sets of Node
// flags (V8's tiering, the young generation's size…), without a supervisor or reloads. The SDK
// test app runs standalone; 8 keep-alive clients start as soon as it accepts.
// `npm run bench:cold-start -- --help` for options.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/ports.ts';
import { ROOT } from './lib/baton.ts';
import { startLoad } from './lib/load.ts';
import { cleanupAll, installGuards, runBench, sleep, track } from './lib/procs.ts';
import { monotonicMs } from '../shared/reload-timing.ts';

const { values: opts } = parseArgs({
  options: {
    flags: { type: 'string', multiple: true },
    trials: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '8' },
    app: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm run bench:cold-start -- [--flags '--always-sparkplug' --flags '' …] [--trials 5] [--seconds 3] [--clients 8]
  --flags STR   one set of Node flags per --flags (space-separated; '' = none); the sets are interleaved trial by trial
  --app FILE    another app (it must listen on STANDALONE_ADDRESS and answer 'pid N' in its body) @default test/fixtures/http-app.ts
`);
  process.exit(0);
}
const SETS = (opts.flags ?? ['']).map((s) => s.split(' ').filter(Boolean));
const TRIALS = Number(opts.trials);
const SECONDS = Number(opts.seconds);
const EDGES = [0, 100, 250, 500, 1000, 2000, 3000, 10_000];
installGuards(30 * 60_000);

/** CPU (ms) of every thread of `pid` that is still running, from schedstat (ns): finer than /proc/PID/stat's 10 ms ticks. */
function cpuMs(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return ns / 1e6;
  } catch {
    return undefined;
  }
}

async function accepting(port: number, child: ReturnType<typeof spawn>): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the app exited (${child.exitCode ?? child.signalCode}) before it accepted`);
    if (Date.now() > deadline) throw new Error('the app did not accept within 20 s');
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(2);
  }
}

interface Trial {
  bootMs: number;
  bins: { cpu: number; requests: number }[];
}

async function trial(flags: string[]): Promise<Trial> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...flags, opts.app ?? path.join(ROOT, 'test/fixtures/http-app.ts')], {
    env: { ...process.env, STANDALONE_ADDRESS: `127.0.0.1:${port}` },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  track(child.pid, 'cold-start app');
  const pid = child.pid!;
  await accepting(port, child);
  const ready = monotonicMs();
  const bootMs = cpuMs(pid) ?? NaN;
  const samples: { t: number; ms: number }[] = [{ t: ready, ms: bootMs }];
  const load = startLoad({ port, kind: 'keep-alive', clients: Number(opts.clients), windowMs: 250, timeoutMs: 10_000, identify: 'body-pid', binMs: 50 });
  const timer = setInterval(() => {
    const ms = cpuMs(pid);
    if (ms !== undefined) samples.push({ t: monotonicMs(), ms });
  }, 50);
  await sleep(SECONDS * 1000);
  clearInterval(timer);
  await load.phase('end');
  const phases = await load.stop();
  child.kill('SIGKILL');
  const bins = EDGES.slice(0, -1).map(() => ({ cpu: 0, requests: 0 }));
  const binOf = (age: number): number => EDGES.findIndex((e, i) => age >= e && age < EDGES[i + 1]!);
  for (let k = 1; k < samples.length; k++) {
    const i = binOf((samples[k - 1]!.t + samples[k]!.t) / 2 - ready);
    if (i >= 0) bins[i]!.cpu += samples[k]!.ms - samples[k - 1]!.ms;
  }
  const tally = phases.warmup?.byServer?.[String(pid)];
  tally?.counts.forEach((n, k) => {
    const i = binOf((tally.first + k + 0.5) * 50 - ready);
    if (i >= 0) bins[i]!.requests += n;
  });
  return { bootMs, bins };
}

async function main(): Promise<void> {
  const results = SETS.map(() => [] as Trial[]);
  for (let t = 0; t < TRIALS; t++) {
    for (const [i, flags] of SETS.entries()) {
      results[i]!.push(await trial(flags));
      await sleep(300);
    }
  }
  const head = ['flags', 'boot CPU ms (median)', ...EDGES.slice(0, -1).map((e, i) => `${e}–${EDGES[i + 1]} ms`)];
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|`);
  for (const [i, flags] of SETS.entries()) {
    const rs = results[i]!;
    const boots = rs.map((r) => r.bootMs).sort((a, b) => a - b);
    const cells = EDGES.slice(0, -1).map((_, k) => {
      const cpu = rs.reduce((a, r) => a + r.bins[k]!.cpu, 0);
      const req = rs.reduce((a, r) => a + r.bins[k]!.requests, 0);
      return req ? `${((cpu * 1000) / req).toFixed(1)} µs (${Math.round(req / rs.length)} req)` : '–';
    });
    console.log(`| ${flags.join(' ') || '(none)'} | ${boots[Math.floor(boots.length / 2)]!.toFixed(0)} | ${cells.join(' | ')} |`);
  }
  await cleanupAll();
}

await runBench(main);
