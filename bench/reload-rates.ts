// Throughput while reloads come on a fixed schedule (every 0.3 s, 1 s, 2 s), against the steady
// state measured between them in the same run, for Baton with several `warmup` values and for
// HAProxy under the same load. `npm run bench:reload-rates -- --help` for options.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { startBaton } from './lib/baton.ts';
import { haproxyVersion, startHaproxy } from './lib/haproxy.ts';
import { AGE_EDGES_MS, CpuAccount, poolAge, poolCpu, poolCycle, type AgeBin, type CpuPhase, type CycleBucket } from './lib/cpu-account.ts';
import { startLoad, type Kind, type PhaseCounts } from './lib/load.ts';
import { alive, cleanupAll, installGuards, sleep, trackedPids, runBench } from './lib/procs.ts';
import { machineLine, phaseResult } from './lib/report.ts';
import { mergeCounts, mergeTallies, printRates, type RateResult, type VariantResult } from './lib/rates-report.ts';
import { gitCommit, loadNow, uniqueResultsFile, writeResults } from './lib/results.ts';
import { machine, summarize } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

const { values: opts } = parseArgs({
  options: {
    intervals: { type: 'string', default: '0.3,1,2' },
    warmups: { type: 'string', default: '0,1s,3s' },
    systems: { type: 'string', default: 'baton,baton-standby,haproxy' },
    clients: { type: 'string', default: '8' },
    kind: { type: 'string', default: 'keep-alive' },
    rounds: { type: 'string', default: '3' },
    'phase-seconds': { type: 'string', default: '6' },
    'baseline-seconds': { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    'max-seconds': { type: 'string', default: '900' },
    variants: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm run bench:reload-rates -- [--intervals 0.3,1,2] [--warmups 0,1s,3s] [--systems baton,baton-standby,haproxy]
                                  [--clients 8] [--kind keep-alive|new-connection] [--rounds 3] [--phase-seconds 6] [--baseline-seconds 3]
                                  [--quick] [--max-seconds 900] [--out FILE.json]
  --intervals LIST   seconds between reloads, one measured phase each
  --warmups LIST     Baton's \`warmup\` values, one Baton instance each (0 = none)
  --systems LIST     baton, baton-standby (\`standby: true\`), haproxy (skipped, and said so, when haproxy is not installed)
  --clients N        concurrent clients of --kind, as fast as they go
  --rounds N         rounds; each gives every system, in turn, one reload phase per interval
  --phase-seconds N  length of each reload phase
  --baseline-seconds N  length of each steady-state phase (before the first reload phase and after each)
  --quick            --rounds 1 --phase-seconds 4 --baseline-seconds 2 --warmups 0,1s (~1.5 min)
  --max-seconds N    hard limit: stop every process and exit 2
  --variants FILE    more Baton instances, from a JSON list of { label, config?, nodeFlags?, supervisorEnv? }: candidates measured in the same run
`);
  process.exit(0);
}
const num = (name: keyof typeof opts, min: number, max: number): number => {
  const v = Number(opts[name]);
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} must be a number from ${min} to ${max}`);
  return v;
};
const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);
const INTERVALS_MS = list(opts.intervals).map((s) => {
  const v = Number(s);
  if (!(v >= 0.05 && v <= 60)) throw new Error(`--intervals: '${s}' is not a number of seconds from 0.05 to 60`);
  return Math.round(v * 1000);
});
const WARMUPS = opts.quick && !process.argv.includes('--warmups') ? ['0', '1s'] : list(opts.warmups);
const ROUNDS = opts.quick ? 1 : num('rounds', 1, 50);
const PHASE_MS = (opts.quick ? 4 : num('phase-seconds', 2, 300)) * 1000;
const BASELINE_MS = (opts.quick ? 2 : num('baseline-seconds', 1, 300)) * 1000;
const CLIENTS = num('clients', 1, 256);
if (opts.kind !== 'keep-alive' && opts.kind !== 'new-connection') throw new Error('--kind must be keep-alive or new-connection');
const KIND = opts.kind as Kind;
const WINDOW_MS = 250;
/** The load generator's bins of responses by serving pid, for µs of CPU per request by a generation's age. */
const BIN_MS = 50;
/** A reload phase's throughput by the time since the latest generation became ready, in buckets of this. */
const CYCLE_BUCKET_MS = 100;
const LOAD_WARMUP_MS = 1_000;
/** After a reload phase, before the next steady state: the last reload (and its warm-up) and the old generation's drain. */
const SETTLE_MS = 1_500;
const TARGET_RATIO = 0.9;
const log = (s: string): void => void process.stderr.write(`${s}\n`);
/** Read at the start: the code that runs, whatever is committed meanwhile. */
const COMMIT = gitCommit();
installGuards(num('max-seconds', 30, 7200) * 1000);

/** A duration as Baton's config takes it (`300ms`, `1s`, `0`) → ms. */
function durationMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(s);
  if (!m) throw new Error(`--warmups: '${s}' is not a duration like 0, 300ms or 1s`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

interface Variant {
  label: string;
  /** Longest a reload can take to finish after it was asked (its warm-up included). */
  settleMs: number;
  start(): Promise<Target>;
}

/** One reload phase: a reload every `intervalMs` for PHASE_MS, between two steady-state phases of the same load. */
interface Block {
  round: number;
  intervalMs: number;
  asked: number;
  done: number;
  reloadsFailed?: number;
  during: PhaseCounts;
  before: PhaseCounts;
  after: PhaseCounts;
  /** The supervisor's (HAProxy: master's) CPU per second of the phase. */
  supervisorCpuPerSecMs?: number;
  loadavg: string;
  /** Where the CPU went during the reload phase and the steady-state phases either side (cpu-account.ts). */
  cpu?: { during?: CpuPhase; before?: CpuPhase; after?: CpuPhase; age: AgeBin[]; cycle: CycleBucket[] };
}


/** Asks `target` for a reload every `intervalMs` (on a fixed schedule, not after the previous one finished) for `phaseMs`; returns how many it asked. */
async function askEvery(target: Target, intervalMs: number, phaseMs: number): Promise<number> {
  const t0 = performance.now();
  let asked = 0;
  for (let at = 0; at < phaseMs; at += intervalMs) {
    await sleep(Math.max(0, t0 + at - performance.now()));
    target.ask!();
    asked += 1;
  }
  await sleep(Math.max(0, t0 + phaseMs - performance.now()));
  return asked;
}

/** Waits until the system has done no reload for 1 s, and at least `minMs`. */
async function settle(target: Target, minMs: number): Promise<void> {
  const t0 = performance.now();
  let last = await target.reloadsDone!();
  let stableSince = performance.now();
  while (performance.now() - t0 < minMs || performance.now() - stableSince < 1_000) {
    await sleep(250);
    const now = await target.reloadsDone!();
    if (now !== last) [last, stableSince] = [now, performance.now()];
    if (performance.now() - t0 > minMs + 30_000) throw new Error('reloads still going on 30 s after the last one was asked');
  }
}

/** One round of one variant: load on, then steady, and for each interval a reload phase followed by steady again. */
async function runRound(v: Variant, target: Target, round: number, intervals: number[]): Promise<(Block & { settle?: PhaseCounts })[]> {
  const load = startLoad({ port: target.port, kind: KIND, clients: CLIENTS, windowMs: WINDOW_MS, timeoutMs: 10_000, ...(target.cpu ? { identify: target.cpu.tally, binMs: BIN_MS } : {}) });
  const acct = target.cpu ? new CpuAccount(target.cpu) : undefined;
  /** Phases switch in the load generator and in the CPU accounting together. */
  const phase = async (name: string): Promise<void> => {
    await load.phase(name);
    acct?.mark(name);
  };
  const meta: Omit<Block, 'during' | 'before' | 'after'>[] = [];
  try {
    acct?.start();
    await sleep(LOAD_WARMUP_MS);
    await phase('steady-0');
    await sleep(BASELINE_MS);
    for (const [k, intervalMs] of intervals.entries()) {
      log(`${v.label}, round ${round + 1}: a reload every ${intervalMs / 1000} s for ${PHASE_MS / 1000} s`);
      const done0 = await target.reloadsDone!();
      const failed0 = target.reloadsFailed?.();
      const cpu0 = target.supervisorCpuMs?.();
      const t0 = performance.now();
      await phase(`rate-${k}`);
      const asked = await askEvery(target, intervalMs, PHASE_MS);
      await phase(`settle-${k}`);
      const cpu1 = target.supervisorCpuMs?.();
      const elapsed = performance.now() - t0;
      const done1 = await target.reloadsDone!();
      const failed1 = target.reloadsFailed?.();
      meta.push({
        round,
        intervalMs,
        asked,
        done: done1 - done0,
        ...(failed0 !== undefined && failed1 !== undefined ? { reloadsFailed: failed1 - failed0 } : {}),
        ...(cpu0 !== undefined && cpu1 !== undefined ? { supervisorCpuPerSecMs: ((cpu1 - cpu0) * 1000) / elapsed } : {}),
        loadavg: loadNow(),
      });
      await settle(target, v.settleMs);
      await phase(`steady-${k + 1}`);
      await sleep(BASELINE_MS);
    }
    await phase('end');
    acct?.stop();
    const phases = await load.stop();
    const settles = intervals.map((_, k) => phases[`settle-${k}`]!);
    const steadies = [...intervals.keys(), intervals.length].map((k) => phases[`steady-${k}`]!);
    // The mark after steady-k: the next reload phase, or the end.
    const afterSteady = (k: number): string => (k < intervals.length ? `rate-${k}` : 'end');
    const steadyCpu = [...intervals.keys(), intervals.length].map((k) => acct?.phase(`steady-${k}`, afterSteady(k)));
    const tallies = mergeTallies(Object.values(phases).flatMap((p) => (p.byServer ? [p.byServer] : [])));
    return meta.map((m, k) => ({
      ...m,
      during: phases[`rate-${k}`]!,
      before: steadies[k]!,
      after: steadies[k + 1]!,
      settle: settles[k],
      ...(acct
        ? {
            cpu: {
              during: acct.phase(`rate-${k}`, `settle-${k}`),
              before: steadyCpu[k],
              after: steadyCpu[k + 1],
              // Generations that became ready during the reload phase, followed until the next reload phase.
              age: acct.byAge(`rate-${k}`, `settle-${k}`, afterSteady(k + 1), tallies, BIN_MS, AGE_EDGES_MS),
              cycle: acct.cycle(`rate-${k}`, `settle-${k}`, tallies, BIN_MS, CYCLE_BUCKET_MS, intervals[k]!),
            },
          }
        : {}),
    }));
  } catch (err) {
    acct?.stop();
    await load.terminate();
    throw err;
  }
}

function result(label: string, blocks: (Block & { settle?: PhaseCounts })[], problems: string[]): VariantResult {
  // Each steady phase is shared by the reload phases on either side of it: count it once.
  const steadyParts = [...new Set(blocks.flatMap((b) => [b.before, b.after]))];
  const steadyOverall = steadyParts.map((p) => phaseResult(p, WINDOW_MS).rpsOverall);
  const rates = INTERVALS_MS.map((intervalMs): RateResult => {
    const mine = blocks.filter((b) => b.intervalMs === intervalMs);
    const during = phaseResult(mergeCounts(mine.map((b) => b.during)), WINDOW_MS);
    const cpu = mine.map((b) => b.supervisorCpuPerSecMs).filter((c): c is number => c !== undefined);
    const cpuDuring = poolCpu(mine.map((b) => b.cpu?.during));
    const cpuSteady = poolCpu([...new Set(mine.flatMap((b) => [b.cpu?.before, b.cpu?.after]))]);
    const drifts = mine.map((b) => {
      const [x, y] = [phaseResult(b.before, WINDOW_MS).rpsOverall, phaseResult(b.after, WINDOW_MS).rpsOverall];
      return Math.max(x, y) / Math.min(x, y);
    });
    return {
      ...(cpuDuring ? { cpu: { during: cpuDuring, steady: cpuSteady, age: poolAge(mine.map((b) => b.cpu?.age ?? [])), cycle: poolCycle(mine.map((b) => b.cpu?.cycle ?? [])) } } : {}),
      drift: summarize(drifts),
      newConnectionsPerSec: (mergeCounts(mine.map((b) => b.during)).newConnections * 1000) / mergeCounts(mine.map((b) => b.during)).durationMs,
      intervalMs,
      asked: mine.reduce((a, b) => a + b.asked, 0),
      done: mine.reduce((a, b) => a + b.done, 0),
      reloadsFailed: mine.reduce((a, b) => a + (b.reloadsFailed ?? 0), 0),
      during,
      ratios: summarize(mine.map((b) => phaseResult(b.during, WINDOW_MS).rpsOverall / phaseResult(mergeCounts([b.before, b.after]), WINDOW_MS).rpsOverall)),
      ratiosMedian: summarize(mine.map((b) => phaseResult(b.during, WINDOW_MS).rps.median / phaseResult(mergeCounts([b.before, b.after]), WINDOW_MS).rps.median)),
      ...(cpu.length ? { supervisorCpuPerSecMs: cpu.reduce((a, c) => a + c, 0) / cpu.length } : {}),
      failed: during.requests - during.ok,
      loadavg: mine.map((b) => b.loadavg),
      perRound: mine.map((b) => ({
        round: b.round + 1,
        beforeRps: phaseResult(b.before, WINDOW_MS).rpsOverall,
        duringRps: phaseResult(b.during, WINDOW_MS).rpsOverall,
        afterRps: phaseResult(b.after, WINDOW_MS).rpsOverall,
        lowestWindowRps: Math.min(...b.during.windows) * (1000 / WINDOW_MS),
        lowestSteadyWindowRps: Math.min(...b.before.windows, ...b.after.windows) * (1000 / WINDOW_MS),
        ...(b.cpu?.during ? { cpuDuring: b.cpu.during.perSec } : {}),
      })),
    };
  });
  const everything = mergeCounts([...steadyParts, ...blocks.flatMap((b) => [b.during, ...(b.settle ? [b.settle] : [])])]);
  const steadyCpuParts = [...new Set(blocks.flatMap((b) => [b.cpu?.before, b.cpu?.after]))];
  return {
    label,
    steady: phaseResult(mergeCounts(steadyParts), WINDOW_MS),
    ...(steadyCpuParts.some(Boolean) ? { steadyCpu: poolCpu(steadyCpuParts) } : {}),
    steadyNewConnectionsPerSec: (mergeCounts(steadyParts).newConnections * 1000) / mergeCounts(steadyParts).durationMs,
    steadyDrift: Math.max(...steadyOverall) / Math.min(...steadyOverall),
    rates,
    failedTotal: everything.requests - everything.ok,
    requestsTotal: everything.requests,
    failureSamples: everything.samples,
    problems: [...new Set(problems)].slice(0, 10),
  };
}


/** `list` turned left by `n`: each round starts with a different element, so no variant or interval always runs first. */
const rotate = <T>(list: T[], n: number): T[] => list.map((_, i) => list[(i + n) % list.length]!);

async function main(): Promise<void> {
  const hv = haproxyVersion();
  const m = machine(hv);
  const wanted = list(opts.systems);
  const variants: Variant[] = [];
  const skipped: Record<string, string> = {};
  for (const standby of [false, true]) {
    if (!wanted.includes(standby ? 'baton-standby' : 'baton')) continue;
    for (const w of WARMUPS) {
      const ms = durationMs(w);
      const name = `rates-${variants.length}`;
      const config = { ...(ms > 0 ? { warmup: w } : {}), ...(standby ? { standby: true } : {}) };
      variants.push({ label: `Baton${standby ? ', standby' : ''}, warmup ${ms === 0 ? '0' : w}`, settleMs: SETTLE_MS + ms, start: () => startBaton('reload', { name, config }) });
    }
  }
  if (opts.variants) {
    const extra = JSON.parse(fs.readFileSync(opts.variants, 'utf8')) as { label: string; config?: Record<string, unknown>; nodeFlags?: string[]; supervisorEnv?: Record<string, string> }[];
    for (const e of extra) {
      const name = `rates-${variants.length}`;
      const warmupMs = typeof e.config?.warmup === 'string' ? durationMs(e.config.warmup) : 0;
      variants.push({ label: e.label, settleMs: SETTLE_MS + warmupMs, start: () => startBaton('reload', { name, config: e.config ?? {}, ...(e.nodeFlags ? { nodeFlags: e.nodeFlags } : {}), ...(e.supervisorEnv ? { supervisorEnv: e.supervisorEnv } : {}) }) });
    }
  }
  if (wanted.includes('haproxy')) {
    if (hv) variants.push({ label: `HAProxy ${hv.split('-')[0]}`, settleMs: SETTLE_MS, start: startHaproxy });
    else skipped.haproxy = 'haproxy is not installed (`command -v haproxy` finds nothing; `apt-get install -y haproxy`): the HAProxy rows are skipped';
  }
  log(`machine: ${machineLine(m)}; load average ${loadNow()}`);
  if (skipped.haproxy) log(`SKIPPED haproxy: ${skipped.haproxy}`);
  // All of them up at once (idle but for the one under load), so that the rounds can interleave them.
  const running: { v: Variant; target: Target; blocks: (Block & { settle?: PhaseCounts })[] }[] = [];
  for (const v of variants) {
    try {
      running.push({ v, target: await v.start(), blocks: [] });
    } catch (err) {
      skipped[v.label] = `failed to start: ${(err as Error).message}`;
      log(`${v.label}: ${skipped[v.label]}`);
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const r of rotate(running, round)) {
      if (skipped[r.v.label]) continue;
      try {
        r.blocks.push(...(await runRound(r.v, r.target, round, rotate(INTERVALS_MS, round))));
      } catch (err) {
        skipped[r.v.label] = `failed in round ${round + 1}: ${(err as Error).message}`;
        log(`${r.v.label}: ${skipped[r.v.label]}`);
        await r.target.stop().catch(() => {}); // so that it does not load the machine under the others
      }
    }
  }
  const results: VariantResult[] = [];
  for (const r of running) {
    await r.target.stop().catch(() => {});
    if (!skipped[r.v.label]) results.push(result(r.v.label, r.blocks, r.target.problems()));
  }
  await cleanupAll();
  const stillAlive = trackedPids().filter((p) => alive(p.pid));
  const markdown = printRates(results, m, skipped, { intervalsMs: INTERVALS_MS, kind: KIND, clients: CLIENTS, rounds: ROUNDS, loadWarmupMs: LOAD_WARMUP_MS, baselineMs: BASELINE_MS, phaseMs: PHASE_MS, windowMs: WINDOW_MS, targetRatio: TARGET_RATIO });
  const file = writeResults(opts.out ?? uniqueResultsFile('reload-rates'), {
    date: new Date().toISOString(),
    command: `npm run bench:reload-rates -- ${process.argv.slice(2).join(' ')}`.trim(),
    commit: COMMIT,
    machine: m,
    loadavgAtEnd: loadNow(),
    options: { intervalsMs: INTERVALS_MS, warmups: WARMUPS, rounds: ROUNDS, kind: KIND, clients: CLIENTS, phaseMs: PHASE_MS, baselineMs: BASELINE_MS, windowMs: WINDOW_MS },
    skipped,
    results,
    markdown,
  });
  console.log(`results written to ${file}`);
  if (stillAlive.length > 0) console.log(`WARNING: processes still present after cleanup: ${stillAlive.map((p) => `${p.pid} (${p.label})`).join(', ')}`);
  if (results.some((r) => r.label.startsWith('Baton') && r.failedTotal > 0)) process.exitCode = 1;
}

await runBench(main);
