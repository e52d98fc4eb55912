/**
 * `npm run bench:startup`: Baton from its TypeScript sources (a checkout: Node strips the types)
 * against the compiled dist/ an install runs (BATON_DIST=1), in one run, each with Node's compile
 * cache warm (the runtime directory exists: every start but the first) and without it:
 * - `baton version`: wall time of the whole process;
 * - `baton run --listen … -- node app.js`: spawn → the first generation answers a GET;
 * - the supervisor's RSS and PSS 3 s after that start (/proc/PID/smaps_rollup);
 * and what a bare Node process weighs with the modules the supervisor cannot do without (zod,
 * pino, yaml) and with the type stripper, so the supervisor's figure can be read as parts.
 * `--samples N` (default 7).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cleanupAll, installGuards, onCleanup, sleep, start, track } from './lib/procs.ts';
import { machine, summarize, type Summary } from './lib/stats.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'bin/baton');
const { values } = parseArgs({ options: { samples: { type: 'string', default: '7' } } });
const SAMPLES = Number(values.samples);
installGuards(20 * 60_000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-startup-'));
onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));

type From = 'sources' | 'dist';
interface Variant {
  from: From;
  cache: boolean;
}
const VARIANTS: Variant[] = [
  { from: 'sources', cache: true },
  { from: 'dist', cache: true },
  { from: 'sources', cache: false },
  { from: 'dist', cache: false },
];
const label = (v: Variant) => `${v.from === 'dist' ? 'compiled dist/' : 'TypeScript sources'}, ${v.cache ? 'compile cache warm' : 'no compile cache'}`;

let dirs = 0;
/** A runtime dir: one that exists (0700) turns the compile cache on; a missing one leaves it off. */
function runtimeDir(v: Variant): string {
  if (v.cache) {
    const dir = path.join(tmp, `rt-${v.from}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }
  return path.join(tmp, `rt-none-${(dirs += 1)}`);
}

function env(v: Variant): NodeJS.ProcessEnv {
  return { ...process.env, BATON_RUNTIME_DIR: runtimeDir(v), BATON_DIST: v.from === 'dist' ? '1' : '0' };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
    let data = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.on('data', (c: Buffer) => (data += c.toString()));
    socket.on('close', () => resolve(data.startsWith('HTTP/1.1 200')));
    socket.on('error', () => resolve(false));
  });
}

function rollup(pid: number): { rss: number; pss: number } {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  return { rss: kb('Rss'), pss: kb('Pss') };
}

function versionMs(v: Variant): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, 'version'], { env: env(v), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`baton version (${label(v)}) failed: ${r.stderr}`);
  return performance.now() - t0;
}

const APP = path.join(tmp, 'app.cjs');
fs.writeFileSync(APP, "require('node:http').createServer((q, s) => s.end('ok')).listen({ fd: 3 });\n");

/** Spawn → first generation serving, and the supervisor's memory 3 s later. */
async function runOnce(v: Variant, n: number): Promise<{ serveMs: number; rss: number; pss: number }> {
  const port = await freePort();
  const args = [BIN, 'run', '--name', `bench-startup-${process.pid}-${n}`, '--listen', `127.0.0.1:${port}`, '--readiness', 'accepting', '--', process.execPath, APP];
  const t0 = performance.now();
  const child = start('supervisor', process.execPath, args, { env: env(v) });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let serveMs = NaN;
  while (performance.now() - t0 < 30_000) {
    if (await answers(port)) {
      serveMs = performance.now() - t0;
      break;
    }
    await sleep(5);
  }
  if (!Number.isFinite(serveMs)) throw new Error(`baton run (${label(v)}) never served`);
  await sleep(Math.max(0, 3_000 - (performance.now() - t0)));
  const mem = rollup(child.pid!);
  child.kill('SIGTERM');
  await exited;
  return { serveMs, ...mem };
}

/** RSS of `node ARGS` once it has loaded what ARGS load and sat idle 1 s. */
async function bareRss(args: string[]): Promise<number> {
  const child = spawn(process.execPath, args, { stdio: 'ignore', cwd: ROOT });
  track(child.pid, 'bare node');
  await sleep(1_500);
  const { rss } = rollup(child.pid!);
  child.kill('SIGKILL');
  return rss;
}

const fmt = (s: Summary, unit: string, digits = 0) => `${s.median.toFixed(digits)} ${unit} (p10–p90 ${s.p10.toFixed(digits)}–${s.p90.toFixed(digits)})`;

async function main(): Promise<void> {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.os}, load ${m.loadavgAtStart}`);
  console.log('building dist/ (npm run build)…');
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr}`);

  // One untimed start per variant warms the cache (and the page cache) first.
  for (const v of VARIANTS) versionMs(v);
  const version = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
  const runs = new Map<Variant, { serveMs: number; rss: number; pss: number }[]>(VARIANTS.map((v) => [v, []]));
  for (let i = 0; i < SAMPLES; i += 1) {
    // Interleaved, so a change in the machine's load hits every variant alike.
    for (const v of VARIANTS) version.get(v)!.push(versionMs(v));
  }
  for (let i = 0; i < SAMPLES; i += 1) {
    for (const v of VARIANTS) runs.get(v)!.push(await runOnce(v, i));
  }

  const rows: string[][] = [['variant', '`baton version`', 'run → first generation serves', 'supervisor RSS after 3 s', 'PSS']];
  const base = VARIANTS[0]!;
  const med = (xs: number[]) => summarize(xs).median;
  for (const v of VARIANTS) {
    const vs = version.get(v)!;
    const rs = runs.get(v)!;
    const ratio = (a: number, b: number) => (v === base ? '' : ` **${(a / b).toFixed(2)}×**`);
    rows.push([
      label(v),
      fmt(summarize(vs), 'ms') + ratio(med(vs), med(version.get(base)!)),
      fmt(summarize(rs.map((r) => r.serveMs)), 'ms') + ratio(med(rs.map((r) => r.serveMs)), med(runs.get(base)!.map((r) => r.serveMs))),
      fmt(summarize(rs.map((r) => r.rss)), 'MiB', 1) + ratio(med(rs.map((r) => r.rss)), med(runs.get(base)!.map((r) => r.rss))),
      fmt(summarize(rs.map((r) => r.pss)), 'MiB', 1),
    ]);
  }
  console.log(`\n${SAMPLES} samples per variant, medians (ratios against the first row)\n`);
  console.log(rows.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${r.map(() => ' --- ').join('|')}|` : ''}`).join('\n'));

  // The parts: a bare Node, and what each big dependency or the stripper adds to it.
  const idle = 'setTimeout(() => {}, 60_000)';
  const ts = path.join(tmp, 'idle.ts');
  fs.writeFileSync(ts, `const t: number = 60_000;\nsetTimeout(() => {}, t);\n`);
  const parts: [string, string[]][] = [
    ['node, idle', ['-e', idle]],
    ['+ zod', ['-e', `import('zod').then(() => ${idle})`]],
    ['+ pino', ['-e', `import('pino').then(() => ${idle})`]],
    ['+ yaml', ['-e', `import('yaml').then(() => ${idle})`]],
    ['+ zod, pino, yaml', ['-e', `Promise.all([import('zod'), import('pino'), import('yaml')]).then(() => ${idle})`]],
    ['a .ts file (type stripper loaded)', [ts]],
  ];
  const measured: [string, number][] = [];
  for (const [name, args] of parts) {
    const xs: number[] = [];
    for (let i = 0; i < 3; i += 1) xs.push(await bareRss(args));
    measured.push([name, summarize(xs).median]);
  }
  const bare = measured[0]![1];
  console.log('\n| process (RSS after 1.5 s idle, median of 3) | RSS | over bare node |\n| --- | --- | --- |');
  for (const [name, rss] of measured) console.log(`| ${name} | ${rss.toFixed(1)} MiB | ${name === 'node, idle' ? '' : `+${(rss - bare).toFixed(1)} MiB`} |`);
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
