/**
 * `npm run bench:startup`: Baton from its TypeScript sources (a checkout: Node strips the types)
 * against the compiled dist/ an install runs (BATON_DIST=1), in one run, each with Node's compile
 * cache warm (the runtime directory exists: every start but the first) and without it, plus dist/
 * with Node's default V8 settings (BATON_SUPERVISOR_NODE_FLAGS='': what bin/baton's own settings
 * for the supervisor are worth) and, with `--baseline REF`, the dist/ of another commit (a
 * temporary git worktree of REF, built there) — before and after in the same run:
 * - `baton version`: wall time of the whole process;
 * - `baton run --listen … -- node app.js`: spawn → the first generation answers a GET;
 * - the supervisor's RSS and PSS 3 s after that start (/proc/PID/smaps_rollup), and again 3 s after
 *   some work (3 reloads, 20 GET /status and 20 GET /metrics), where the code that runs often
 *   has been compiled and the reload path loaded;
 * and what a bare Node process weighs with the modules the supervisor cannot do without (valibot,
 * pino) and others, so the supervisor's figure can be read as parts.
 * `--samples N` (default 7), `--baseline REF` (e.g. main).
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
const { values } = parseArgs({ options: { samples: { type: 'string', default: '7' }, baseline: { type: 'string' } } });
const SAMPLES = Number(values.samples);
installGuards(30 * 60_000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-startup-'));
onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
/** bin/baton's V8 settings for the supervisor, as this checkout's bin/baton has them. */
const SUPERVISOR_FLAGS = /var SUPERVISOR_FLAGS = \[([^\]]*)\]/.exec(fs.readFileSync(path.join(ROOT, 'bin/baton'), 'utf8'))?.[1]?.match(/--[^']+/g) ?? [];
const http = process.getBuiltinModule('node:http');

interface Variant {
  label: string;
  /** The checkout whose bin/baton runs. */
  root: string;
  from: 'sources' | 'dist';
  cache: boolean;
  /** BATON_SUPERVISOR_NODE_FLAGS; undefined: bin/baton's own. */
  flags?: string;
}
const VARIANTS: Variant[] = [
  { label: 'sources, cache warm', root: ROOT, from: 'sources', cache: true },
  { label: 'dist/, cache warm', root: ROOT, from: 'dist', cache: true },
  { label: 'sources, no cache', root: ROOT, from: 'sources', cache: false },
  { label: 'dist/, no cache', root: ROOT, from: 'dist', cache: false },
  { label: "dist/, cache warm, Node's default V8 settings", root: ROOT, from: 'dist', cache: true, flags: '' },
];

let dirs = 0;
/** A runtime dir: one that exists (0700) turns the compile cache on; a missing one leaves it off. */
function runtimeDir(v: Variant): string {
  dirs += 1;
  if (v.cache) {
    const dir = path.join(tmp, `rt-${VARIANTS.indexOf(v)}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }
  return path.join(tmp, `rt-none-${dirs}`);
}

function env(v: Variant, runtime: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, BATON_RUNTIME_DIR: runtime, BATON_DIST: v.from === 'dist' ? '1' : '0' };
  if (v.flags !== undefined) e.BATON_SUPERVISOR_NODE_FLAGS = v.flags;
  else delete e.BATON_SUPERVISOR_NODE_FLAGS;
  return e;
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

/** One GET through a control socket; resolves with the status code (0 on a failure). */
function control(socketPath: string, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: urlPath, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

function rollup(pid: number): { rss: number; pss: number } {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  return { rss: kb('Rss'), pss: kb('Pss') };
}

function versionMs(v: Variant): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path.join(v.root, 'bin/baton'), 'version'], { env: env(v, runtimeDir(v)), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`baton version (${v.label}) failed: ${r.stderr}`);
  return performance.now() - t0;
}

const APP = path.join(tmp, 'app.cjs');
fs.writeFileSync(APP, "require('node:http').createServer((q, s) => s.end('ok')).listen({ fd: 3 });\n");

interface Run {
  serveMs: number;
  rss: number;
  pss: number;
  /** 3 s after 3 reloads and 40 control requests. */
  busyRss: number;
  busyPss: number;
}

/** Spawn → first generation serving, the supervisor's memory 3 s later, then after some work. */
async function runOnce(v: Variant, n: number): Promise<Run> {
  const port = await freePort();
  const name = `bench-startup-${process.pid}-${n}`;
  const runtime = runtimeDir(v);
  const bin = path.join(v.root, 'bin/baton');
  const args = [bin, 'run', '--name', name, '--listen', `127.0.0.1:${port}`, '--readiness', 'accepting', '--', process.execPath, APP];
  const t0 = performance.now();
  const child = start('supervisor', process.execPath, args, { env: env(v, runtime) });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let serveMs = NaN;
  while (performance.now() - t0 < 30_000) {
    if (await answers(port)) {
      serveMs = performance.now() - t0;
      break;
    }
    await sleep(5);
  }
  if (!Number.isFinite(serveMs)) throw new Error(`baton run (${v.label}) never served: ${child.stderr?.read()?.toString() ?? ''}`);
  await sleep(Math.max(0, 3_000 - (performance.now() - t0)));
  const first = rollup(child.pid!);
  const socket = path.join(runtime, `${name}.sock`);
  for (let i = 0; i < 3; i += 1) {
    const r = spawnSync(process.execPath, [bin, 'reload', '--name', name], { env: env(v, runtime), encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`baton reload (${v.label}) failed: ${r.stderr}`);
  }
  for (let i = 0; i < 20; i += 1) {
    const codes = await Promise.all([control(socket, '/status'), control(socket, '/metrics')]);
    if (codes.some((c) => c !== 200)) throw new Error(`control requests (${v.label}) answered ${codes.join(', ')}`);
  }
  await sleep(3_000);
  const busy = rollup(child.pid!);
  child.kill('SIGTERM');
  await exited;
  return { serveMs, ...first, busyRss: busy.rss, busyPss: busy.pss };
}

/** RSS of `node ARGS` once it has loaded what ARGS load and sat idle 1.5 s. */
async function bareRss(args: string[]): Promise<number> {
  const child = spawn(process.execPath, args, { stdio: 'ignore', cwd: ROOT });
  track(child.pid, 'bare node');
  await sleep(1_500);
  const { rss } = rollup(child.pid!);
  child.kill('SIGKILL');
  return rss;
}

/** A detached worktree of `ref` with this checkout's node_modules, Node and native build, built (dist/). */
function baselineTree(ref: string): string {
  const dir = path.join(tmp, 'baseline');
  const git = (...args: string[]) => {
    const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout.trim();
  };
  git('worktree', 'add', '--detach', dir, ref);
  onCleanup(() => void spawnSync('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT }));
  for (const link of ['node_modules', '.node', 'build']) fs.symlinkSync(path.join(ROOT, link), path.join(dir, link));
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build of ${ref} failed: ${build.stderr}`);
  return dir;
}

const fmt = (s: Summary, unit: string, digits = 0) => `${s.median.toFixed(digits)} ${unit} (p10–p90 ${s.p10.toFixed(digits)}–${s.p90.toFixed(digits)})`;

async function main(): Promise<void> {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.os}, load ${m.loadavgAtStart}`);
  console.log(`supervisor V8 settings (bin/baton): ${SUPERVISOR_FLAGS.join(' ') || 'none'}`);
  console.log('building dist/ (npm run build)…');
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr}`);
  if (values.baseline) {
    const sha = spawnSync('git', ['rev-parse', '--short', values.baseline], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
    console.log(`building the baseline ${values.baseline} (${sha}) in a temporary worktree…`);
    VARIANTS.push({ label: `baseline ${values.baseline} (${sha}): dist/, cache warm`, root: baselineTree(values.baseline), from: 'dist', cache: true });
  }

  // One untimed start per variant warms the cache (and the page cache) first.
  for (const v of VARIANTS) versionMs(v);
  const version = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
  const runs = new Map<Variant, Run[]>(VARIANTS.map((v) => [v, []]));
  for (let i = 0; i < SAMPLES; i += 1) {
    // Interleaved, so a change in the machine's load hits every variant alike.
    for (const v of VARIANTS) version.get(v)!.push(versionMs(v));
  }
  for (let i = 0; i < SAMPLES; i += 1) {
    for (const v of VARIANTS) runs.get(v)!.push(await runOnce(v, i));
  }

  const base = VARIANTS.at(-1)!.root !== ROOT ? VARIANTS.at(-1)! : VARIANTS[0]!;
  const rows: string[][] = [['variant', '`baton version`', 'run → first generation serves', 'supervisor RSS 3 s after start', 'PSS', 'RSS after 3 reloads + 40 requests', 'PSS']];
  const med = (xs: number[]) => summarize(xs).median;
  for (const v of VARIANTS) {
    const vs = version.get(v)!;
    const rs = runs.get(v)!;
    const ratio = (pick: (r: Run) => number) => (v === base ? '' : ` **${(med(rs.map(pick)) / med(runs.get(base)!.map(pick))).toFixed(2)}×**`);
    rows.push([
      v.label,
      fmt(summarize(vs), 'ms') + (v === base ? '' : ` **${(med(vs) / med(version.get(base)!)).toFixed(2)}×**`),
      fmt(summarize(rs.map((r) => r.serveMs)), 'ms') + ratio((r) => r.serveMs),
      fmt(summarize(rs.map((r) => r.rss)), 'MiB', 1) + ratio((r) => r.rss),
      fmt(summarize(rs.map((r) => r.pss)), 'MiB', 1),
      fmt(summarize(rs.map((r) => r.busyRss)), 'MiB', 1) + ratio((r) => r.busyRss),
      fmt(summarize(rs.map((r) => r.busyPss)), 'MiB', 1),
    ]);
  }
  console.log(`\n${SAMPLES} samples per variant, medians (ratios against "${base.label}")\n`);
  console.log(rows.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${r.map(() => ' --- ').join('|')}|` : ''}`).join('\n'));

  // The parts: a bare Node, and what each dependency or the stripper adds to it.
  const idle = 'setTimeout(() => {}, 60_000)';
  const ts = path.join(tmp, 'idle.ts');
  fs.writeFileSync(ts, `const t: number = 60_000;\nsetTimeout(() => {}, t);\n`);
  const esm = (code: string) => ['--input-type=module', '-e', `${code}; ${idle}`];
  const parts: [string, string[]][] = [
    ["node, idle (Node's defaults)", ['-e', idle]],
    ['node, idle', [...SUPERVISOR_FLAGS, '-e', idle]],
    ['+ valibot', [...SUPERVISOR_FLAGS, ...esm("await import('valibot')")]],
    ['+ pino', [...SUPERVISOR_FLAGS, ...esm("await import('pino')")]],
    ['+ yaml', [...SUPERVISOR_FLAGS, ...esm("await import('yaml')")]],
    ['+ valibot, pino, yaml', [...SUPERVISOR_FLAGS, ...esm("await Promise.all([import('valibot'), import('pino'), import('yaml')])")]],
    ["+ `import http from 'node:http'`", [...SUPERVISOR_FLAGS, ...esm("await import('node:http')")]],
    ["+ `process.getBuiltinModule('node:http')`", [...SUPERVISOR_FLAGS, ...esm("process.getBuiltinModule('node:http')")]],
    ['a .ts file (type stripper loaded)', [...SUPERVISOR_FLAGS, ts]],
  ];
  const measured: [string, number][] = [];
  for (const [name, args] of parts) {
    const xs: number[] = [];
    for (let i = 0; i < 3; i += 1) xs.push(await bareRss(args));
    measured.push([name, summarize(xs).median]);
  }
  const bare = measured[1]![1];
  console.log(`\n| process (RSS after 1.5 s idle, median of 3; "+" rows with the supervisor's V8 settings) | RSS | over idle node |\n| --- | --- | --- |`);
  for (const [name, rss] of measured) console.log(`| ${name} | ${rss.toFixed(1)} MiB | ${name === 'node, idle' ? '' : `${rss - bare >= 0 ? '+' : ''}${(rss - bare).toFixed(1)} MiB`} |`);
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
