// Reloads: first where one reload's time goes (the breakdown, by SIGHUP and by `baton reload`,
// beside HAProxy's signal → first new response, under a light load), then reloads under HTTP
// load: errors, throughput against a baseline, and reload latency, for Baton (reloading the app,
// or with --systems baton-upgrade replacing its own supervisor process) and (when installed)
// HAProxy's seamless reload. `npm run bench:reload -- --help` for options.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startBaton } from './lib/baton.ts';
import { bareClient, type BareClientSample } from './lib/bare-client.ts';
import { requireFreshDist } from './lib/dist.ts';
import { haproxyVersion, startHaproxy } from './lib/haproxy.ts';
import { startPm2 } from './lib/pm2.ts';
import { startLoad, type Kind, type PhaseCounts } from './lib/load.ts';
import { breakdown, breakdownMarkdown, breakdownTable, STEPS, type Breakdown } from './lib/breakdown.ts';
import { currentIdentity } from './lib/probe.ts';
import { alive, cleanupAll, installGuards, sleep, trackedPids, runBench } from './lib/procs.ts';
import { errorsTable, figuresTable, kindResult, latencyTable, loadLine, machineLine, markdownTable, type KindResult } from './lib/report.ts';
import { machine, summarize, type Summary } from './lib/stats.ts';
import { gitCommit, uniqueResultsFile } from './lib/results.ts';
import { SYSTEM_LABEL, type ReloadSample, type System, type Target, type Trigger } from './lib/target.ts';

const { values: opts } = parseArgs({
  options: {
    reloads: { type: 'string', default: '30' },
    'latency-reloads': { type: 'string', default: '60' },
    sections: { type: 'string', default: 'latency,throughput' },
    clients: { type: 'string', default: '8' },
    'baseline-seconds': { type: 'string', default: '6' },
    'gap-ms': { type: 'string', default: '250' },
    systems: { type: 'string', default: 'baton,baton-standby,haproxy' },
    workers: { type: 'string', default: '1' },
    balance: { type: 'string', default: 'reuseport' },
    cli: { type: 'string', default: 'dist' },
    'max-seconds': { type: 'string', default: '900' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm run bench:reload -- [--reloads 30] [--clients 8] [--baseline-seconds 6] [--gap-ms 250]
                            [--systems baton,baton-standby,baton-upgrade,haproxy] [--sections latency,throughput] [--latency-reloads 60]
                            [--max-seconds 900] [--out FILE.json]
  --sections LIST    latency (the breakdown of one reload, light load), throughput (reloads under load) [both]
  --latency-reloads N  latency: reloads per system and trigger (Baton: kill -HUP and baton reload, interleaved) [60]
  --reloads N        throughput: reloads per system and client kind
  --clients N        concurrent clients of each kind (keep-alive, new-connection)
  --baseline-seconds total time without reloads: half before the reloads, half after
  --gap-ms N         pause after each reload has been seen serving
  --systems LIST     baton (reloads the app), baton-standby (the same with standby: true), baton-upgrade (replaces the supervisor: baton upgrade), haproxy, pm2 (cluster mode)
  --workers N        Baton's workers per generation, PM2's cluster instances [1]
  --balance B        Baton with several workers: reuseport | shared [reuseport]
  --cli FROM         where \`baton reload\` runs from: dist (the compiled dist/, as an installed package; npm run build first) | sources [dist]
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
const LATENCY_RELOADS = num('latency-reloads', 1, 1000);
if (opts.cli !== 'dist' && opts.cli !== 'sources') throw new Error(`--cli must be dist or sources, not '${opts.cli}'`);
const CLI_FROM = opts.cli;
const SECTIONS = new Set(opts.sections.split(',').map((x) => x.trim()));
// `baton reload` is timed as an operator runs it: an installed package runs dist/ (with its
// one-file client), and a stale dist/ would time other code.
if (CLI_FROM === 'dist' && SECTIONS.has('latency')) requireFreshDist('--cli dist (the default; --cli sources for the checkout)');
/** Clients of the light load during the latency section: enough to see a failed request, too few to slow the reload. */
const LIGHT_CLIENTS = 2;
/** Pause after each reload of the latency section, so the old generation's drain is not in the next one's figures. */
const LATENCY_GAP_MS = 300;
/** The latency section's light load: each client pauses this long after each response (~100 req/s each). */
const LIGHT_PAUSE_MS = 10;
/** Its probe: one new connection every 2 ms, not back to back, so the probe's own CPU stays out of the reload it times. */
const PROBE_INTERVAL_MS = 2;
/** How long the supervisor's idle CPU is measured, to tell it from what the reloads cost. */
const IDLE_MS = 3_000;
const log = (s: string): void => void process.stderr.write(`${s}\n`);
installGuards(num('max-seconds', 10, 3600) * 1000);

interface LatencyResult {
  system: System;
  breakdowns: Breakdown[];
  /** The supervisor's (HAProxy: the master's) CPU per reload, less its idle rate over the same time. */
  supervisorCpuPerReloadMs?: number;
  supervisorIdleCpuPerSecMs?: number;
  load: { requests: number; ok: number; failed: number; samples: string[] };
  /** `baton reload`: its process's CPU, and a bare Node client started in the gaps of the same run (the floor of any Node command; bench/lib/bare-client.ts). */
  cli?: { cpuMs: Summary; bareNodeCpuMs: Summary; bareNodeWallMs: Summary; bareNodeReachMs: Summary };
}

/** The latency section for one system: LATENCY_RELOADS reloads per trigger, interleaved, under a light keep-alive load. */
async function latency(target: Target): Promise<LatencyResult> {
  const name = `${target.system} latency`;
  const triggers: Trigger[] = target.triggers?.length ? target.triggers : ['api'];
  let identity = await currentIdentity(target.port, target.identify);
  const load = startLoad({ port: target.port, kind: 'keep-alive', clients: LIGHT_CLIENTS, windowMs: WINDOW_MS, timeoutMs: 10_000, pauseMs: LIGHT_PAUSE_MS });
  const samples: ReloadSample[] = [];
  const bare: BareClientSample[] = [];
  const bareNode = triggers.includes('cli') ? await bareClient() : undefined;
  try {
    await sleep(WARMUP_MS);
    const idle0 = target.supervisorCpuMs?.();
    await sleep(IDLE_MS);
    const idle1 = target.supervisorCpuMs?.();
    await load.phase('latency');
    const t0 = performance.now();
    for (let i = 0; i < LATENCY_RELOADS; i++) {
      for (const trigger of triggers) {
        const s = await target.reload(identity, trigger, PROBE_INTERVAL_MS);
        identity = s.identity;
        samples.push(s);
        const gapEnds = performance.now() + LATENCY_GAP_MS;
        // The floor of any Node command, in the same conditions: its start, a connection, its exit.
        if (trigger === 'cli' && bareNode) bare.push(await bareNode.run());
        await sleep(Math.max(0, gapEnds - performance.now()));
      }
      if ((i + 1) % 10 === 0 || i + 1 === LATENCY_RELOADS) log(`${name}: ${i + 1}/${LATENCY_RELOADS} reloads per trigger (${triggers.join(', ')})`);
    }
    await sleep(SETTLE_MS);
    const cpu1 = target.supervisorCpuMs?.();
    const elapsed = performance.now() - t0;
    await load.phase('end');
    const counts = (await load.stop()).latency as PhaseCounts;
    const idleRate = idle0 !== undefined && idle1 !== undefined ? (idle1 - idle0) / IDLE_MS : undefined;
    return {
      system: target.system,
      breakdowns: triggers.map((t) => breakdown(t, samples)),
      ...(idleRate !== undefined && cpu1 !== undefined && idle1 !== undefined
        ? { supervisorCpuPerReloadMs: (cpu1 - idle1 - idleRate * elapsed) / samples.length, supervisorIdleCpuPerSecMs: idleRate * 1000 }
        : {}),
      load: { requests: counts.requests, ok: counts.ok, failed: counts.requests - counts.ok, samples: counts.samples },
      ...(bare.length > 0
        ? {
            cli: {
              cpuMs: summarize(samples.map((x) => x.cliCpuMs).filter((v): v is number => v !== undefined)),
              bareNodeCpuMs: summarize(bare.map((b) => b.cpuMs)),
              bareNodeWallMs: summarize(bare.map((b) => b.wallMs)),
              bareNodeReachMs: summarize(bare.map((b) => b.reachMs)),
            },
          }
        : {}),
    };
  } catch (err) {
    await load.terminate();
    throw err;
  } finally {
    bareNode?.close();
  }
}

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
  const latencies: LatencyResult[] = [];
  const problems: Record<string, string[]> = {};
  const describe: Record<string, string> = {};
  const systems: { name: System; start: () => Promise<Target> }[] = [];
  const workers = num('workers', 1, 64);
  const balance = opts.balance === 'shared' ? 'shared' : 'reuseport';
  if (wanted.includes('baton')) systems.push({ name: 'baton', start: () => startBaton('reload', { workers, balance, cliFrom: CLI_FROM }) });
  if (wanted.includes('baton-standby')) systems.push({ name: 'baton-standby', start: () => startBaton('reload', { workers, balance, cliFrom: CLI_FROM, config: { standby: true } }) });
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
      if (SECTIONS.has('latency') && sys.name !== 'baton-upgrade') latencies.push(await latency(target));
      if (SECTIONS.has('throughput')) for (const kind of KINDS) results.push(await scenario(target, kind));
      await target.stop();
    } catch (err) {
      skipped[sys.name] = `failed: ${(err as Error).message}`;
      log(`${sys.name}: ${skipped[sys.name]}`);
    }
    problems[sys.name] = target?.problems() ?? [];
  }
  await cleanupAll();
  const stillAlive = trackedPids().filter((p) => alive(p.pid));

  const latencyOut = printLatency(m, latencies, skipped);
  const out = print(m, results, skipped, describe, problems);
  const file = opts.out ?? uniqueResultsFile('reload');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        command: `npm run bench:reload -- ${process.argv.slice(2).join(' ')}`.trim(),
        commit: gitCommit(),
        machine: m,
        options: { latencyReloads: LATENCY_RELOADS, latencyGapMs: LATENCY_GAP_MS, lightClients: LIGHT_CLIENTS, sections: [...SECTIONS], reloads: RELOADS, clients: CLIENTS, baselineMs: BASELINE_MS, gapMs: GAP_MS, windowMs: WINDOW_MS, warmupMs: WARMUP_MS, settleMs: SETTLE_MS },
        method: out.method,
        scenarios: describe,
        skipped,
        latency: latencies,
        latencyMarkdown: latencyOut,
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

function printLatency(m: ReturnType<typeof machine>, latencies: LatencyResult[], skipped: Record<string, string>): string {
  if (latencies.length === 0) return '';
  const columns = latencies.flatMap((l) => l.breakdowns.map((b) => ({ label: SYSTEM_LABEL[l.system], b, hasSteps: l.system === 'baton' || l.system === 'baton-standby' })));
  console.log(`\n# Where a reload's time goes — ${LATENCY_RELOADS} reloads per trigger, interleaved, ${LIGHT_CLIENTS} keep-alive clients of light load (a ${LIGHT_PAUSE_MS} ms pause after each response), a probe every ${PROBE_INTERVAL_MS} ms\n`);
  console.log(`Machine: ${machineLine(m)}`);
  console.log(loadLine(m));
  if (skipped.haproxy) console.log(`HAProxy: ${skipped.haproxy}`);
  console.log(
    [
      '- Each step starts where the one above ends, on one clock (CLOCK_MONOTONIC, read by the bench, the supervisor and the generation): the supervisor\'s marks and the SDK\'s (sent with its ready message) come from the supervisor\'s log record of the promotion (its `timing` field).',
      ...STEPS.map((s) => `- ${s.name}: ${s.covers}.`),
      `- first response: the bench's probe, a new connection every ${PROBE_INTERVAL_MS} ms, sees the new pid answer (the outside view, to within one probe; the new generation accepts from the shared queue once it listens, so this can come before the old one is told to drain).`,
      `- HAProxy: SIGUSR2 to the master (its reload signal in master-worker mode) → the first response carrying the new worker's pid; it replaces a small C process in front of an upstream that keeps running, not the app.`,
      `- PM2: \`pm2 reload\` spawned (its CLI's start included, as \`baton reload\`'s is) → the first response from the new process of a plain Node HTTP server in cluster mode.`,
    ].join('\n'),
  );
  console.log(`\n${breakdownTable(columns)}\n`);
  // Each system's first response against plain Baton's and HAProxy's of the same run, per trigger.
  const first = (sys: System, t: Trigger) => latencies.find((l) => l.system === sys)?.breakdowns.find((x) => x.trigger === t)?.firstResponse;
  for (const t of ['signal', 'cli'] as Trigger[]) {
    const sb = first('baton-standby', t);
    if (!sb) continue;
    const against = (name: string, o: ReturnType<typeof first>) =>
      o ? `${(sb.median / o.median).toFixed(2)}× ${name}'s p50, ${(sb.p99 / o.p99).toFixed(2)}× its p99` : undefined;
    const parts = [against('Baton without standby', first('baton', t)), against('HAProxy (kill -USR2)', first('haproxy', 'signal')), against('PM2 (pm2 reload)', first('pm2', 'api'))].filter(Boolean);
    console.log(`standby, ${t === 'signal' ? 'kill -HUP' : 'baton reload'} → first new response: ${sb.median.toFixed(0)} ms p50 / ${sb.p99.toFixed(0)} ms p99; ${parts.join('; ')}`);
  }
  const baton = latencies.find((l) => l.system === 'baton');
  const byHup = baton?.breakdowns.find((b) => b.trigger === 'signal');
  const byCli = baton?.breakdowns.find((b) => b.trigger === 'cli');
  if (byHup && byCli) {
    console.log(
      `baton reload vs kill -HUP: +${(byCli.steps[0]!.ms.median - byHup.steps[0]!.ms.median).toFixed(1)} ms p50 to reach the supervisor ` +
        `(+${(byCli.firstResponse.median - byHup.firstResponse.median).toFixed(1)} ms p50 to the first new response, +${(byCli.total.median - byHup.total.median).toFixed(1)} ms to the drain)`,
    );
    const c = baton?.cli;
    if (c) {
      console.log(
        `baton reload (from ${CLI_FROM === 'dist' ? 'dist/, as installed' : "the checkout's sources"})'s process: ${c.cpuMs.median.toFixed(1)} ms CPU p50 (p90 ${c.cpuMs.p90.toFixed(1)}); ` +
          `a bare Node client in the same run (node -e: connect to a Unix socket, write one line): reached its socket ${c.bareNodeReachMs.median.toFixed(1)} ms p50 after its spawn ` +
          `(p90 ${c.bareNodeReachMs.p90.toFixed(1)}), ${c.bareNodeCpuMs.median.toFixed(1)} ms CPU p50, ${c.bareNodeWallMs.median.toFixed(1)} ms wall p50: ` +
          `Baton's own part of the command is ${(byCli.steps[0]!.ms.median - c.bareNodeReachMs.median).toFixed(1)} ms to reach the supervisor and ${(c.cpuMs.median - c.bareNodeCpuMs.median).toFixed(1)} ms CPU`,
      );
    }
  }
  for (const l of latencies) {
    const cpu = l.supervisorCpuPerReloadMs !== undefined ? `; supervisor CPU ${l.supervisorCpuPerReloadMs.toFixed(1)} ms per reload (idle ${l.supervisorIdleCpuPerSecMs?.toFixed(1)} ms/s taken off)` : '';
    console.log(`${SYSTEM_LABEL[l.system]}: ${l.load.failed} failed of ${l.load.requests} requests during the reloads${cpu}${l.load.samples.length ? ` (first failures: ${l.load.samples.join('; ')})` : ''}`);
  }
  const markdown = breakdownMarkdown(columns);
  console.log(`\nFor the README (${machineLine(m)}):\n\n${markdown}\n`);
  return markdown;
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
  if (results.length === 0) return { method: [], markdown: '' };
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

await runBench(main);
