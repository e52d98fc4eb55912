// Dev runners compared on one app in one run: time from a save to the new code answering, and
// requests refused (or failed) during the restart, under keep-alive and new-connection load.
// `baton dev` (hot restart), `node --watch` (kill and start again), and nodemon when installed.
// `npm run bench:dev -- --help` for options.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib/baton.ts';
import { requireFreshDist } from './lib/dist.ts';
import { startLoad, type LoadRun, type PhaseCounts } from './lib/load.ts';
import { nodemonCommand } from './lib/nodemon.ts';
import { currentIdentity, probeOnce, waitForNewIdentity, type Identify } from './lib/probe.ts';
import { alive, cleanupAll, installGuards, onCleanup, sleep, start, stderrOf } from './lib/procs.ts';
import { boxTable, loadLine, machineLine } from './lib/report.ts';
import { machine, summarize, type Summary } from './lib/stats.ts';

const { values: opts } = parseArgs({
  options: {
    saves: { type: 'string', default: '15' },
    clients: { type: 'string', default: '2' },
    'gap-ms': { type: 'string', default: '600' },
    starts: { type: 'string', default: '7' },
    systems: { type: 'string', default: 'baton,node-watch,nodemon' },
    'max-seconds': { type: 'string', default: '300' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm run bench:dev -- [--saves 15] [--clients 2] [--gap-ms 600] [--starts 7] [--systems baton,node-watch,nodemon] [--max-seconds 300]
  --systems LIST   of baton (the checkout's sources), baton-dist (dist/, as installed; npm run build first), node-watch, nodemon
  --saves N        saves per system (each: write the file, probe until the new code answers)
  --clients N      concurrent clients of each kind (keep-alive, new-connection) during the saves
  --gap-ms N       pause after the new code answered, before the next save
  --starts N       fresh starts per runner, interleaved, timed from spawn to the app's first answer
  --max-seconds N  hard limit: stop every process and exit 2
  --verbose        show each runner's own output
`);
  process.exit(0);
}
const num = (name: keyof typeof opts, min: number, max: number): number => {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return v;
};
const SAVES = num('saves', 1, 500);
const CLIENTS = num('clients', 1, 64);
const GAP_MS = num('gap-ms', 0, 10_000);
const STARTS = num('starts', 0, 100);
const TIMEOUT_MS = 20_000;
const log = (s: string): void => void process.stderr.write(`${s}\n`);
installGuards(num('max-seconds', 20, 3600) * 1000);

/** The app: plain JavaScript, so every runner runs it unchanged; the answer names the version. */
const APP = `import http from 'node:http';
import { version } from './version.js';
http.createServer((req, res) => res.end(version + ' pid ' + process.pid + '\\n')).listen(Number(process.env.PORT));
`;
const version = (i: number): string => `export const version = 'v${i}';\n`;
const identify: Identify = (_res, body) => /^(v\d+) /.exec(body)?.[1];

interface System {
  /** As given to --systems. */
  key: string;
  name: string;
  describe: string;
  command: (dir: string) => string[];
  /** Added to the runner's environment. */
  env?: Record<string, string>;
}

const SYSTEMS: System[] = [
  {
    key: 'baton',
    name: 'baton dev',
    describe: 'baton dev app.js (hot restart; debounce 100 ms)',
    command: () => [process.execPath, '--disable-warning=ExperimentalWarning', path.join(ROOT, 'bin/baton'), 'dev', 'app.js'],
  },
  {
    key: 'baton-dist',
    name: 'baton dev (dist)',
    describe: 'baton dev app.js as installed: dist/, the bundled command line (npm run build)',
    command: () => [process.execPath, path.join(ROOT, 'bin/baton'), 'dev', 'app.js'],
    env: { BATON_DIST: '1' },
  },
  { key: 'node-watch', name: 'node --watch', describe: `node --watch app.js (${process.version})`, command: () => [process.execPath, '--watch', 'app.js'] },
  { key: 'nodemon', name: 'nodemon', describe: 'nodemon app.js (defaults)', command: () => [nodemonBin as string, 'app.js'] },
];

interface Result {
  system: string;
  describe: string;
  /** Save → the new version answers a new connection, ms. */
  saveToNew: number[];
  summary: Summary;
  load: PhaseCounts[];
  /** Probe attempts that failed (refused…) while waiting for the new version. */
  probeErrors: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Kills the process group we created for `child` (node --watch's app, nodemon's, baton's generations). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

interface Launched {
  dir: string;
  port: number;
  child: ChildProcess;
  /** performance.now() just before the spawn. */
  t0: number;
}

/**
 * Baton's runtime directory, one for the whole run and outside the app's: a user's persists
 * (`$XDG_RUNTIME_DIR/baton`, `/tmp/baton-UID`) and holds the compile cache every start after
 * the first uses; a fresh one per start would time the first start ever, and the app's watcher
 * would see the cache being written.
 */
const RUNTIME_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-dev-run-'));
fs.chmodSync(RUNTIME_DIR, 0o700);
onCleanup(() => fs.rmSync(RUNTIME_DIR, { recursive: true, force: true }));

/** The app in a fresh directory, and `system` started on it in its own process group. */
async function launch(system: System): Promise<Launched> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-dev-'));
  fs.writeFileSync(path.join(dir, 'app.js'), APP);
  fs.writeFileSync(path.join(dir, 'version.js'), version(0));
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
  const port = await freePort();
  const [command, ...args] = system.command(dir) as [string, ...string[]];
  const t0 = performance.now();
  const child = start(system.name, command, args, {
    cwd: dir,
    // Its own process group, killed as a whole: a runner's app is a child of the runner.
    detached: true,
    env: { ...process.env, PORT: String(port), NO_COLOR: '1', BATON_RUNTIME_DIR: RUNTIME_DIR, ...system.env },
    onLine: (line) => {
      if (opts.verbose || /reload \d+ failed|✖/.test(line)) log(`${system.name}: ${line}`);
    },
  });
  onCleanup(() => killGroup(child, 'SIGKILL'));
  return { dir, port, child, t0 };
}

/** Stops the runner's whole group (SIGTERM, then SIGKILL after 3 s) and removes its directory. */
async function shutdown({ child, dir }: Launched): Promise<void> {
  killGroup(child, 'SIGTERM');
  const deadline = Date.now() + 3_000;
  while (child.pid !== undefined && alive(child.pid) && Date.now() < deadline) await sleep(20);
  killGroup(child, 'SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
}

/** One fresh start: spawn → the app's first answer on a new connection, probed every 2 ms. */
async function firstAnswer(system: System): Promise<number> {
  const run = await launch(system);
  try {
    for (;;) {
      const answer = await probeOnce(run.port, identify, 1_000);
      if (answer.identity !== undefined) return Math.round(performance.now() - run.t0);
      if (performance.now() - run.t0 > TIMEOUT_MS) throw new Error(`${system.name}: no answer ${TIMEOUT_MS} ms after the start (${answer.error ?? 'no identity'})`);
      await sleep(2);
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${stderrOf(run.child).slice(-1500)}`);
  } finally {
    await shutdown(run);
  }
}

async function measure(system: System): Promise<Result> {
  const run = await launch(system);
  const { dir, port, child } = run;
  const loads: LoadRun[] = [];
  try {
    let current = await currentIdentity(port, identify);
    // Let the watcher finish its first scan before the first save.
    await sleep(1_000);
    for (const kind of ['keep-alive', 'new-connection'] as const) {
      const load = startLoad({ port, kind, clients: CLIENTS, windowMs: 250, timeoutMs: 10_000 });
      loads.push(load);
      await load.phase('saves');
    }
    await sleep(500);
    const samples: number[] = [];
    let probeErrors = 0;
    for (let i = 1; i <= SAVES; i++) {
      const t0 = performance.now();
      fs.writeFileSync(path.join(dir, 'version.js'), version(i));
      const seen = await waitForNewIdentity(port, identify, current, t0, TIMEOUT_MS);
      current = seen.identity;
      samples.push(Math.round(seen.ms));
      probeErrors += seen.errors.length;
      await sleep(GAP_MS);
    }
    const counts = await Promise.all(loads.map(async (l) => (await l.stop()).saves as PhaseCounts));
    loads.length = 0;
    log(`${system.name}: ${samples.join(' ')} ms`);
    return { system: system.name, describe: system.describe, saveToNew: samples, summary: summarize(samples), load: counts, probeErrors };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${stderrOf(child).slice(-1500)}`);
  } finally {
    for (const l of loads) await l.terminate();
    await shutdown(run);
  }
}

/** The nodemon command (bench/lib/nodemon.ts), once --systems asks for it. */
let nodemonBin: string | undefined;

async function main(): Promise<void> {
  const m = machine();
  const wanted = opts.systems.split(',').map((s) => s.trim());
  const chosen = SYSTEMS.filter((s) => wanted.includes(s.key));
  const results: Result[] = [];
  const skipped: string[] = [];
  log(`machine: ${machineLine(m)}`);
  const runnable: System[] = [];
  for (const system of chosen) {
    if (system.key === 'baton-dist') requireFreshDist('--systems baton-dist');
    if (system.name === 'nodemon') {
      try {
        nodemonBin = nodemonCommand(log);
      } catch (err) {
        skipped.push(`nodemon: not on PATH, and installing it from npm failed: ${(err as Error).message}`);
        continue;
      }
    }
    runnable.push(system);
  }
  // Start-up first, the runners interleaved: the machine's drift falls on all of them alike.
  const starts = new Map<string, number[]>(runnable.map((s) => [s.name, []]));
  if (STARTS > 0) log(`start → first answer: ${STARTS} fresh starts per runner, interleaved, after one not counted…`);
  // Start 0 is not counted: it fills the page cache and Baton's compile cache, as any earlier run would have.
  for (let i = STARTS > 0 ? -1 : 0; i < STARTS; i++) {
    for (const system of runnable) {
      if (!starts.has(system.name)) continue;
      try {
        const ms = await firstAnswer(system);
        if (i >= 0) starts.get(system.name)!.push(ms);
      } catch (err) {
        starts.delete(system.name);
        skipped.push(`${system.name}: start-up failed: ${(err as Error).message}`);
      }
    }
  }
  for (const system of runnable) {
    log(`${system.name}: ${SAVES} saves under ${CLIENTS} keep-alive + ${CLIENTS} new-connection clients…`);
    try {
      results.push(await measure(system));
    } catch (err) {
      skipped.push(`${system.name}: failed: ${(err as Error).message}`);
    }
  }
  await cleanupAll();

  const base = results.find((r) => r.system === 'node --watch');
  const rows = results.map((r) => {
    const [ka, nc] = r.load as [PhaseCounts, PhaseCounts];
    const errors = (c: PhaseCounts): string => `${c.refused} refused, ${c.reset} reset, ${c.other + c.non200} other / ${c.requests}`;
    const ratio = base && r !== base ? `${(r.summary.median / base.summary.median).toFixed(2)}×` : base === r ? '1.00×' : '—';
    return [
      r.system,
      String(r.summary.median),
      `${r.summary.p10}–${r.summary.p90}`,
      `${r.summary.min}–${r.summary.max}`,
      ratio,
      errors(nc),
      errors(ka),
      ((nc.refused + ka.refused) / SAVES).toFixed(1),
    ];
  });
  const headers = ['runner', 'save→new code, median ms', 'p10–p90', 'min–max', 'vs node --watch', 'new-connection clients', 'keep-alive clients', 'refused per save (all clients)'];
  console.log(`\nmachine: ${machineLine(m)}; ${loadLine(m)}`);
  console.log(`command: npm run bench:dev -- ${process.argv.slice(2).join(' ')}`.trim());
  console.log(`${SAVES} saves per runner; ${CLIENTS} keep-alive + ${CLIENTS} new-connection clients during them; ${GAP_MS} ms between saves`);
  for (const r of results) console.log(`  ${r.describe}: samples (ms) ${r.saveToNew.join(', ')}; probe errors while waiting: ${r.probeErrors}`);
  console.log(boxTable(headers, rows));
  console.log(['', `| ${headers.join(' | ')} |`, `|${headers.map(() => ' --- ').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n'));
  if (STARTS > 0) {
    const baseStarts = starts.get('node --watch');
    const baseMedian = baseStarts && baseStarts.length > 0 ? summarize(baseStarts).median : undefined;
    const startRows = [...starts].map(([name, samples]) => {
      const sum = summarize(samples);
      return [name, String(sum.median), `${sum.p10}–${sum.p90}`, `${sum.min}–${sum.max}`, baseMedian ? `${(sum.median / baseMedian).toFixed(2)}×` : '—', samples.join(', ')];
    });
    const startHeaders = ['runner', 'start → first answer, median ms', 'p10–p90', 'min–max', 'vs node --watch', 'samples (ms)'];
    console.log(`\nstart → first answer: ${STARTS} fresh starts per runner (after one not counted), interleaved, a probe every 2 ms from the spawn; Baton's runtime directory (compile cache) kept across them`);
    console.log(boxTable(startHeaders, startRows));
    console.log(['', `| ${startHeaders.join(' | ')} |`, `|${startHeaders.map(() => ' --- ').join('|')}|`, ...startRows.map((row) => `| ${row.join(' | ')} |`)].join('\n'));
  }
  for (const s of skipped) console.log(`skipped: ${s}`);
}

await main();
process.exit(0);
