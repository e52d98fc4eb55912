/**
 * `npm run bench:sdk`: what the SDK costs a generation (issue #19). Two Baton instances run side
 * by side (or more, `--variants`), one with the SDK example app (examples/http-app.ts, the default config: the preload
 * too), one with the same app without the SDK (bench/lib/plain-http-app.ts: fd 3, SIGTERM drain,
 * `preload: off`). They are reloaded in turn, the order swapped each round, with no load, so each
 * generation lives `--life-ms` and serves nothing; every generation's whole CPU time (user +
 * system, start to exit, from process.resourceUsage at exit: bench/lib/cpu-at-exit.cjs, loaded
 * into both) is the figure, with a bare `node -e 0` measured between the reloads as the floor.
 * Also its ready time (the supervisor's readyMs, and the SDK's import step from its marks).
 *
 *   npm run bench:sdk                          # 20 generations per variant (~2.5 min)
 *   npm run bench:sdk -- --generations 40 --life-ms 1000 --variants plain,sdk,sdk-no-memory,sdk-no-preload
 *   npm run bench:sdk -- --from dist --variants plain,plain-lean,sdk   # as installed: dist/ (npm run build), the apps as .mjs
 *
 * `--life-ms` is the pause after each reload; with N variants reloaded in turn a generation lives
 * about N times that, so the default (3 s, two variants) takes each past the memory reporter's
 * first sample (memory.interval, 5 s by default) — a generation that lives gets it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ReloadTiming } from '../shared/reload-timing.ts';
import { controlRequest } from '../supervisor/cli/control-client.ts';
import { ROOT, startBaton, timedNode } from './lib/baton.ts';
import { asInstalledApp, requireFreshDist } from './lib/dist.ts';
import { cleanupAll, cpuMsOf, installGuards, sleep } from './lib/procs.ts';
import { boxTable, loadLine, machineLine } from './lib/report.ts';
import { machine, summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

const { values } = parseArgs({
  options: {
    generations: { type: 'string', default: '20' },
    'life-ms': { type: 'string', default: '3000' },
    variants: { type: 'string', default: 'plain,sdk' },
    'max-seconds': { type: 'string', default: '900' },
    from: { type: 'string', default: 'sources' },
    out: { type: 'string' },
  },
});
const GENERATIONS = Number(values.generations);
const LIFE_MS = Number(values['life-ms']);
if (!(GENERATIONS >= 2 && GENERATIONS <= 1000) || !(LIFE_MS >= 0 && LIFE_MS <= 60_000)) throw new Error('--generations 2..1000, --life-ms 0..60000');
if (values.from !== 'sources' && values.from !== 'dist') throw new Error('--from sources|dist');
const FROM_DIST = values.from === 'dist';
if (FROM_DIST) requireFreshDist('--from dist');
installGuards(Number(values['max-seconds']) * 1000);
const log = (s: string): void => void process.stderr.write(`${s}\n`);
/** The idle figure: measured this long after the last reload (past memory.interval), over IDLE_MS. */
const IDLE_AFTER_MS = 6_000;
const IDLE_MS = 10_000;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-sdk-'));
const NODE = [process.execPath, '--disable-warning=ExperimentalWarning', '--require', path.join(ROOT, 'bench/lib/cpu-at-exit.cjs')];

interface Variant {
  name: string;
  label: string;
  command: string[];
  config: Record<string, unknown>;
  cpuFile: string;
}
// From dist/ the supervisor, the preload and the SDK are the compiled JavaScript, and both apps plain
// JavaScript as a user's would be: a checkout's TypeScript sources cost type stripping per module.
const appFile = (app: string): string => (FROM_DIST ? asInstalledApp(app, tmp) : path.join(ROOT, app));
const SDK_APP = [...NODE, appFile('examples/http-app.ts')];
/** A preload that only hides node:http's undici getters, as Baton's preload does first. */
function leanHttpPreload(): string {
  const module = FROM_DIST ? path.join(ROOT, 'dist/child/start/lean-http.js') : path.join(ROOT, 'child/start/lean-http.ts');
  const file = path.join(tmp, 'lean-http-preload.mjs');
  fs.writeFileSync(file, `import { hideUndiciExports } from ${JSON.stringify(pathToFileURL(module).href)};\nhideUndiciExports();\n`);
  return file;
}
const ALL: Omit<Variant, 'cpuFile'>[] = [
  { name: 'plain', label: 'the same app without the SDK (fd 3, preload: off)', command: [...NODE, appFile('bench/lib/plain-http-app.ts')], config: { preload: 'off' } },
  // The preload also spares an app Node's undici (child/start/lean-http.ts): this one gets that alone, so
  // the SDK's own cost is told apart from what the app no longer loads.
  { name: 'plain-lean', label: 'the same app without the SDK, node:http as under the preload (child/lean-http)', command: [...NODE, '--import', leanHttpPreload(), appFile('bench/lib/plain-http-app.ts')], config: { preload: 'off' } },
  { name: 'sdk', label: 'SDK example app (examples/http-app.ts, the default config)', command: SDK_APP, config: {} },
  // For telling the parts apart: without the memory reporter, without the preload.
  { name: 'sdk-no-memory', label: 'SDK example app, memory: { interval: 0 }', command: SDK_APP, config: { memory: { interval: 0 } } },
  { name: 'sdk-no-preload', label: 'SDK example app, preload: off', command: SDK_APP, config: { preload: 'off' } },
];
const wanted = values.variants.split(',').map((v) => v.trim());
const VARIANTS: Variant[] = ALL.filter((v) => wanted.includes(v.name)).map((v) => ({ ...v, cpuFile: path.join(tmp, `${v.name}.txt`) }));
if (!VARIANTS.some((v) => v.name === 'plain') || VARIANTS.length !== wanted.length) throw new Error(`--variants: plain and any of ${ALL.map((v) => v.name).join(', ')}`);

interface Started {
  pid: number;
  readyMs: number;
  timing?: ReloadTiming;
}

function cpuByPid(file: string): Map<number, number> {
  const out = new Map<number, number>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const [pid, user, sys] = line.split(' ').map(Number);
    if (pid) out.set(pid, ((user ?? NaN) + (sys ?? NaN)) / 1000);
  }
  return out;
}

async function main(): Promise<void> {
  const m = machine();
  log(`machine: ${machineLine(m)}`);
  const targets = new Map<string, Target>();
  for (const v of VARIANTS) {
    targets.set(v.name, await startBaton('reload', { name: `bench-${v.name}`, command: v.command, config: { ...v.config, env: { BENCH_CPU_FILE: v.cpuFile } }, ...(FROM_DIST ? { supervisorEnv: { BATON_DIST: '1' } } : {}) }));
  }
  const started = new Map<string, Started[]>(VARIANTS.map((v) => [v.name, []]));
  const bare: number[] = [];
  const bareFile = path.join(tmp, 'bare.txt');
  for (let i = 0; i < GENERATIONS; i++) {
    // Reversed each round, so no variant always starts right after the same other one's drain.
    for (const v of i % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
      const r = await controlRequest(targets.get(v.name)!.controlSocket!, 'POST', '/reload', 60_000);
      const body = r.body as { ok: boolean; pid: number; readyMs: number; timing?: ReloadTiming; error?: { message: string } };
      if (!body.ok) throw new Error(`${v.name}: reload failed: ${body.error?.message}`);
      started.get(v.name)!.push({ pid: body.pid, readyMs: body.readyMs, ...(body.timing ? { timing: body.timing } : {}) });
      await sleep(LIFE_MS);
    }
    bare.push(await timedNode(['-e', '0'], {}, bareFile));
    if ((i + 1) % 5 === 0) log(`${i + 1}/${GENERATIONS} generations per variant`);
  }
  // Then what a generation costs while it lives and serves nothing: the last one of each variant,
  // once past its memory reporter's start (memory.interval, 5 s by default), over IDLE_MS.
  await sleep(IDLE_AFTER_MS);
  const last = VARIANTS.map((v) => started.get(v.name)!.at(-1)!.pid);
  const before = last.map(cpuMsOf);
  await sleep(IDLE_MS);
  const idle = new Map(VARIANTS.map((v, i) => [v.name, ((cpuMsOf(last[i]!) - before[i]!) * 1000) / IDLE_MS]));
  // Stopping drains the last generation of each: it exits, and its CPU is written, like the others'.
  for (const t of targets.values()) await t.stop();

  const rows: string[][] = [];
  const results: Record<string, { cpuMs: Summary; readyMs: Summary; sdkImportMs?: Summary; cpuToReadyMs?: Summary; missing: number }> = {};
  for (const v of VARIANTS) {
    const cpu = cpuByPid(v.cpuFile);
    const gens = started.get(v.name)!;
    const cpus = gens.map((g) => cpu.get(g.pid)).filter((c): c is number => c !== undefined);
    const imports = gens.map((g) => (g.timing?.child?.listenCalled !== undefined ? g.timing.child.listenCalled - g.timing.child.booted : undefined)).filter((x): x is number => x !== undefined);
    results[v.name] = {
      cpuMs: summarize(cpus),
      readyMs: summarize(gens.map((g) => g.readyMs)),
      ...(imports.length > 0 ? { sdkImportMs: summarize(imports) } : {}),
      ...(gens.some((g) => g.timing?.child?.cpuMs !== undefined) ? { cpuToReadyMs: summarize(gens.map((g) => g.timing?.child?.cpuMs).filter((x): x is number => x !== undefined)) } : {}),
      missing: gens.length - cpus.length,
    };
  }
  const plain = results.plain!;
  const sdk = results.sdk;
  const floor = summarize(bare);
  const f = (s: Summary): string => `${s.median.toFixed(1)} ms`;
  const spread = (s: Summary): string => `${s.p10.toFixed(1)}–${s.p90.toFixed(1)}`;
  rows.push(['bare `node -e 0` (the floor)', String(floor.samples), f(floor), spread(floor), (floor.median / plain.cpuMs.median).toFixed(2) + '×', '', '']);
  for (const v of VARIANTS) {
    const r = results[v.name]!;
    rows.push([
      v.label,
      String(r.cpuMs.samples),
      f(r.cpuMs),
      spread(r.cpuMs),
      (r.cpuMs.median / plain.cpuMs.median).toFixed(2) + '×',
      `${f(r.readyMs)} / ${r.readyMs.p99.toFixed(0)} ms`,
      `${(idle.get(v.name) ?? NaN).toFixed(1)} ms/s`,
    ]);
  }
  console.log(`\n# What the SDK costs a generation — ${GENERATIONS} generations per variant, each living ${LIFE_MS} ms, no load\n`);
  console.log(`Machine: ${machineLine(m)}`);
  console.log(FROM_DIST ? '- From dist/ (BATON_DIST=1, the apps as .mjs importing dist/child/index.js), as an installed package runs.' : "- From the checkout's TypeScript sources (--from dist: as installed).");
  console.log(loadLine(m));
  console.log(
    '- CPU = user + system of the generation process from its start to its exit (process.resourceUsage at exit, bench/lib/cpu-at-exit.cjs preloaded into both), with no request served.',
  );
  console.log('- ready = spawned → ready as the supervisor sees it (readyMs): the SDK sends ready; the plain app is ready once it accepts (read every 20 ms, twice in a row).');
  console.log(`- idle = CPU per second of a live generation serving nothing, ${IDLE_AFTER_MS / 1000} s after the last reload (past the memory reporter's start), over ${IDLE_MS / 1000} s (/proc/PID/stat, 10 ms ticks).`);
  console.log(`\n${boxTable(['Generation', 'Samples', 'CPU p50 (start to exit)', 'CPU p10–p90', 'vs without SDK', 'ready p50 / p99', 'idle'], rows)}\n`);
  if (sdk) console.log(`SDK example app ÷ the same app without the SDK: ${(sdk.cpuMs.median / plain.cpuMs.median).toFixed(2)}× CPU (target ≤ 1.3×)`);
  const lean = results['plain-lean'];
  if (sdk && lean) console.log(`SDK example app ÷ that app with node:http as under the preload: ${(sdk.cpuMs.median / lean.cpuMs.median).toFixed(2)}× CPU (the SDK's own part)`);
  if (sdk?.sdkImportMs) console.log(`SDK app's import step (Node booted → first listen()): ${f(sdk.sdkImportMs)} p50, ${sdk.sdkImportMs.p99.toFixed(1)} ms p99`);
  if (sdk?.cpuToReadyMs) console.log(`SDK app's CPU until its ready message: ${f(sdk.cpuToReadyMs)} p50 (of its ${f(sdk.cpuMs)} start to exit)`);
  for (const [name, r] of Object.entries(results)) if (r.missing > 0) console.log(`NOTE ${name}: ${r.missing} generations reported no CPU time (did not reach exit)`);
  const out = values.out ?? path.join(ROOT, 'bench/results', `sdk-${new Date().toISOString().slice(0, 10)}-${process.pid}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: m, options: { generations: GENERATIONS, lifeMs: LIFE_MS, variants: wanted, from: values.from }, floor, results, idleCpuMsPerSec: Object.fromEntries(idle) }, null, 2)}\n`);
  console.log(`\nresults written to ${path.relative(process.cwd(), out)}`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit();
