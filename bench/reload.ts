// Reloads under HTTP load: errors, throughput against a baseline, and reload latency, for Baton
// (reloading the app, or with --systems baton-upgrade replacing its own supervisor process) and
// (when installed) HAProxy's seamless reload. `npm run bench:reload -- --help` for options.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startBaton } from './lib/baton.ts';
import { haproxyVersion, startHaproxy } from './lib/haproxy.ts';
import { startPm2 } from './lib/pm2.ts';
import { startLoad, type Kind } from './lib/load.ts';
import { currentIdentity } from './lib/probe.ts';
import { alive, cleanupAll, installGuards, sleep, trackedPids } from './lib/procs.ts';
import { errorsTable, figuresTable, kindResult, latencyTable, loadLine, machineLine, markdownTable, type KindResult } from './lib/report.ts';
import { machine } from './lib/stats.ts';
import { SYSTEM_LABEL, type ReloadSample, type System, type Target } from './lib/target.ts';

const { values: opts } = parseArgs({
  options: {
    reloads: { type: 'string', default: '30' },
    clients: { type: 'string', default: '8' },
    'baseline-seconds': { type: 'string', default: '6' },
    'gap-ms': { type: 'string', default: '250' },
    systems: { type: 'string', default: 'baton,haproxy' },
    workers: { type: 'string', default: '1' },
    balance: { type: 'string', default: 'reuseport' },
    'max-seconds': { type: 'string', default: '900' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm run bench:reload -- [--reloads 30] [--clients 8] [--baseline-seconds 6] [--gap-ms 250]
                            [--systems baton,baton-upgrade,haproxy] [--max-seconds 900] [--out FILE.json]
  --reloads N        reloads per system and client kind
  --clients N        concurrent clients of each kind (keep-alive, new-connection)
  --baseline-seconds total time without reloads: half before the reloads, half after
  --gap-ms N         pause after each reload has been seen serving
  --systems LIST     baton (reloads the app), baton-upgrade (replaces the supervisor: baton upgrade), haproxy, pm2 (cluster mode)
  --workers N        Baton's workers per generation, PM2's cluster instances [1]
  --balance B        Baton with several workers: reuseport | shared [reuseport]
  --max-seconds N    hard limit: stop every process and exit 2
`);
  process.exit(0);
}
const num = (name: keyof typeof opts, min: number, max: number): number => {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return v;
};
const RELOADS = num('reloads', 1, 1000);
const CLIENTS = num('clients', 1, 256);
const BASELINE_MS = num('baseline-seconds', 2, 120) * 1000;
const GAP_MS = num('gap-ms', 0, 10_000);
const WINDOW_MS = 250;
const WARMUP_MS = 1_000;
const SETTLE_MS = 1_000;
const KINDS: Kind[] = ['keep-alive', 'new-connection'];
const log = (s: string): void => void process.stderr.write(`${s}\n`);
installGuards(num('max-seconds', 10, 3600) * 1000);

/** One system, one client kind: warm-up, baseline, then RELOADS reloads under the same load. */
async function scenario(target: Target, kind: Kind): Promise<KindResult> {
  const name = `${target.system} ${kind}`;
  let identity = await currentIdentity(target.port, target.identify);
  const load = startLoad({ port: target.port, kind, clients: CLIENTS, windowMs: WINDOW_MS, timeoutMs: 10_000 });
  const samples: ReloadSample[] = [];
  try {
    await sleep(WARMUP_MS);
    await load.phase('baseline-before');
    log(`${name}: baseline ${BASELINE_MS / 2000} s`);
    await sleep(BASELINE_MS / 2);
    await load.phase('reloads');
    for (let i = 0; i < RELOADS; i++) {
      const s = await target.reload(identity);
      identity = s.identity;
      samples.push(s);
      if ((i + 1) % 10 === 0 || i + 1 === RELOADS) log(`${name}: ${i + 1}/${RELOADS} reloads (last: ${Math.round(s.probeMs)} ms)`);
      await sleep(GAP_MS);
    }
    await sleep(SETTLE_MS); // the last reload's drain belongs to the measured phase
    await load.phase('baseline-after');
    log(`${name}: baseline again, ${BASELINE_MS / 2000} s`);
    await sleep(BASELINE_MS / 2);
    await load.phase('end');
    return kindResult(target.system, kind, CLIENTS, await load.stop(), samples, WINDOW_MS);
  } catch (err) {
    await load.terminate();
    throw err;
  }
}

async function main(): Promise<void> {
  const hv = haproxyVersion();
  const m = machine(hv);
  const wanted = opts.systems.split(',').map((s) => s.trim());
  const skipped: Record<string, string> = {};
  const results: KindResult[] = [];
  const problems: Record<string, string[]> = {};
  const describe: Record<string, string> = {};
  const systems: { name: System; start: () => Promise<Target> }[] = [];
  const workers = num('workers', 1, 64);
  const balance = opts.balance === 'shared' ? 'shared' : 'reuseport';
  if (wanted.includes('baton')) systems.push({ name: 'baton', start: () => startBaton('reload', { workers, balance }) });
  if (wanted.includes('baton-upgrade')) systems.push({ name: 'baton-upgrade', start: () => startBaton('upgrade', { workers, balance }) });
  if (wanted.includes('pm2')) systems.push({ name: 'pm2', start: () => startPm2(workers) });
  if (wanted.includes('haproxy')) {
    if (hv) systems.push({ name: 'haproxy', start: startHaproxy });
    else skipped.haproxy = 'haproxy is not installed (`command -v haproxy` finds nothing): HAProxy figures skipped';
  }
  log(`machine: ${machineLine(m)}`);
  for (const sys of systems) {
    let target: Target | undefined;
    try {
      target = await sys.start();
      describe[sys.name] = target.describe;
      for (const kind of KINDS) results.push(await scenario(target, kind));
      await target.stop();
    } catch (err) {
      skipped[sys.name] = `failed: ${(err as Error).message}`;
      log(`${sys.name}: ${skipped[sys.name]}`);
    }
    problems[sys.name] = target?.problems() ?? [];
  }
  await cleanupAll();
  const stillAlive = trackedPids().filter((p) => alive(p.pid));

  const out = print(m, results, skipped, describe, problems);
  const file = opts.out ?? uniqueResultsFile();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        command: `npm run bench:reload -- ${process.argv.slice(2).join(' ')}`.trim(),
        commit: gitCommit(),
        machine: m,
        options: { reloads: RELOADS, clients: CLIENTS, baselineMs: BASELINE_MS, gapMs: GAP_MS, windowMs: WINDOW_MS, warmupMs: WARMUP_MS, settleMs: SETTLE_MS },
        method: out.method,
        scenarios: describe,
        skipped,
        results,
        problems,
        markdown: out.markdown,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nresults written to ${path.relative(process.cwd(), file)}`);
  if (stillAlive.length > 0) console.log(`WARNING: processes still present after cleanup: ${stillAlive.map((p) => `${p.pid} (${p.label})`).join(', ')}`);
}

function print(
  m: ReturnType<typeof machine>,
  results: KindResult[],
  skipped: Record<string, string>,
  describe: Record<string, string>,
  problems: Record<string, string[]>,
): { method: string[]; markdown: string } {
  const method = [
    `Load: ${CLIENTS} clients per kind in a worker thread (Node http; keep-alive = one keep-alive agent socket each, new-connection = agent:false + Connection: close), each request counted exactly once; wrk is not used because it cannot classify each failed request.`,
    `Phases per system and kind: ${WARMUP_MS / 1000} s warm-up, ${BASELINE_MS / 2000} s baseline, ${RELOADS} reloads (each next one ${GAP_MS} ms after the previous new process served) + ${SETTLE_MS / 1000} s settle, ${BASELINE_MS / 2000} s baseline again; the baseline is both halves, without reloads. Throughput samples are 200 OK per ${WINDOW_MS} ms window.`,
    'Reload latency = reload requested (POST /reload / master CLI `reload` sent) → first 200 OK from the new process to a probe that opens a new connection per request, back to back, and reads the pid (Baton: http-app.ts body; HAProxy: x-haproxy-pid header). Measured from the outside because a process can be ready before, or accept later than, its supervisor says; resolution is one probe round trip.',
    'Self-reported: Baton = POST /reload returns (new generation promoted, old one told to drain); HAProxy = `show proc` on the master CLI lists the new worker (polled every 5 ms).',
  ];
  console.log(`\n# Reload under load — ${RELOADS} reloads per system and client kind\n`);
  console.log(`Machine: ${machineLine(m)}`);
  console.log(loadLine(m));
  for (const [sys, d] of Object.entries(describe)) console.log(`${SYSTEM_LABEL[sys as System]}: ${d}`);
  if (describe.baton && describe.haproxy) console.log('The scenarios differ: HAProxy reloads the proxy in front of an app that keeps running; Baton replaces the app itself. Compare each against its own baseline.');
  for (const [sys, why] of Object.entries(skipped)) console.log(`SKIPPED ${sys}: ${why}`);
  console.log(`\n${method.map((s) => `- ${s}`).join('\n')}\n`);
  if (results.length > 0) {
    console.log(figuresTable(results));
    console.log(errorsTable(results));
    console.log(latencyTable(results));
  }
  for (const r of results) {
    const samples = [...r.during.errorSamples, ...r.baseline.errorSamples];
    if (samples.length > 0) console.log(`first failures, ${r.system} ${r.kind}: ${samples.join('; ')}`);
    if (Math.abs(r.baselineDrift - 1) > 0.2) console.log(`NOTE ${r.system} ${r.kind}: the baseline after the reloads ran at ${r.baselineDrift.toFixed(2)}× the one before: the machine's load changed during the run.`);
    if (r.probeErrors.length > 0) console.log(`probe errors, ${r.system} ${r.kind}: ${r.probeErrors.join(', ')}`);
  }
  for (const [sys, list] of Object.entries(problems)) {
    if (list.length > 0) console.log(`${sys} logged ${list.length} warnings/errors: ${[...new Set(list)].slice(0, 10).join(' | ')}`);
  }
  const markdown = markdownTable(results);
  console.log(`\nFor the README (${machineLine(m)}):\n\n${markdown}`);
  return { method, markdown };
}

function uniqueResultsFile(): string {
  const base = path.join(ROOT, 'bench/results', `reload-${new Date().toISOString().slice(0, 10)}`);
  for (let i = 1; ; i++) {
    const f = `${base}${i === 1 ? '' : `-${i}`}.json`;
    if (!fs.existsSync(f)) return f;
  }
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5_000 }).trim();
  } catch {
    return undefined;
  }
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
process.exit();
