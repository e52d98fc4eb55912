// Throughput while reloads come on a fixed schedule (every 0.3 s, 1 s, 2 s), against the steady
// state measured between them in the same run, for Baton with several `warmup` values and for
// HAProxy under the same load. `npm run bench:reload-rates -- --help` for options.
import { parseArgs } from 'node:util';
import { startBaton } from './lib/baton.ts';
import { haproxyVersion, startHaproxy } from './lib/haproxy.ts';
import { startLoad, type Kind, type PhaseCounts } from './lib/load.ts';
import { alive, cleanupAll, installGuards, sleep, trackedPids } from './lib/procs.ts';
import { boxTable, loadLine, machineLine, phaseResult, type PhaseResult } from './lib/report.ts';
import { gitCommit, loadNow, uniqueResultsFile, writeResults } from './lib/results.ts';
import { machine, summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

const { values: opts } = parseArgs({
  options: {
    intervals: { type: 'string', default: '0.3,1,2' },
    warmups: { type: 'string', default: '0,1s,3s' },
    systems: { type: 'string', default: 'baton,haproxy' },
    clients: { type: 'string', default: '8' },
    kind: { type: 'string', default: 'keep-alive' },
    rounds: { type: 'string', default: '3' },
    'phase-seconds': { type: 'string', default: '6' },
    'baseline-seconds': { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    'max-seconds': { type: 'string', default: '900' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm run bench:reload-rates -- [--intervals 0.3,1,2] [--warmups 0,1s,3s] [--systems baton,haproxy]
                                  [--clients 8] [--kind keep-alive|new-connection] [--rounds 3] [--phase-seconds 6] [--baseline-seconds 3]
                                  [--quick] [--max-seconds 900] [--out FILE.json]
  --intervals LIST   seconds between reloads, one measured phase each
  --warmups LIST     Baton's \`warmup\` values, one Baton instance each (0 = none)
  --systems LIST     baton, haproxy (skipped, and said so, when haproxy is not installed)
  --clients N        concurrent clients of --kind, as fast as they go
  --rounds N         rounds; each gives every system, in turn, one reload phase per interval
  --phase-seconds N  length of each reload phase
  --baseline-seconds N  length of each steady-state phase (before the first reload phase and after each)
  --quick            --rounds 1 --phase-seconds 4 --baseline-seconds 2 --warmups 0,1s (~1.5 min)
  --max-seconds N    hard limit: stop every process and exit 2
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
const LOAD_WARMUP_MS = 1_000;
/** After a reload phase, before the next steady state: the last reload (and its warm-up) and the old generation's drain. */
const SETTLE_MS = 1_500;
const TARGET_RATIO = 0.9;
const log = (s: string): void => void process.stderr.write(`${s}\n`);
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
}

interface RateResult {
  intervalMs: number;
  asked: number;
  done: number;
  reloadsFailed: number;
  /** Every 250 ms window of this rate's phases, all rounds. */
  during: PhaseResult;
  /** Per round: whole-phase throughput (200 OK / duration) against the mean of the steady-state phases on either side. */
  ratios: Summary;
  /** Per round: median window against the median window of the steady-state phases on either side. */
  ratiosMedian: Summary;
  supervisorCpuPerSecMs?: number;
  failed: number;
  loadavg: string[];
}

interface VariantResult {
  label: string;
  steady: PhaseResult;
  /** Largest / smallest whole-phase throughput of its steady-state phases: the machine's drift during the run. */
  steadyDrift: number;
  rates: RateResult[];
  /** Failed requests in every phase, steady ones and settles included. */
  failedTotal: number;
  requestsTotal: number;
  failureSamples: string[];
  problems: string[];
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
  const load = startLoad({ port: target.port, kind: KIND, clients: CLIENTS, windowMs: WINDOW_MS, timeoutMs: 10_000 });
  const meta: Omit<Block, 'during' | 'before' | 'after'>[] = [];
  try {
    await sleep(LOAD_WARMUP_MS);
    await load.phase('steady-0');
    await sleep(BASELINE_MS);
    for (const [k, intervalMs] of intervals.entries()) {
      log(`${v.label}, round ${round + 1}: a reload every ${intervalMs / 1000} s for ${PHASE_MS / 1000} s`);
      const done0 = await target.reloadsDone!();
      const failed0 = target.reloadsFailed?.();
      const cpu0 = target.supervisorCpuMs?.();
      const t0 = performance.now();
      await load.phase(`rate-${k}`);
      const asked = await askEvery(target, intervalMs, PHASE_MS);
      await load.phase(`settle-${k}`);
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
      await load.phase(`steady-${k + 1}`);
      await sleep(BASELINE_MS);
    }
    await load.phase('end');
    const phases = await load.stop();
    const settles = intervals.map((_, k) => phases[`settle-${k}`]!);
    const steadies = [...intervals.keys(), intervals.length].map((k) => phases[`steady-${k}`]!);
    return meta.map((m, k) => ({ ...m, during: phases[`rate-${k}`]!, before: steadies[k]!, after: steadies[k + 1]!, settle: settles[k] }));
  } catch (err) {
    await load.terminate();
    throw err;
  }
}

function merge(parts: PhaseCounts[]): PhaseCounts {
  const out: PhaseCounts = { requests: 0, ok: 0, non200: 0, refused: 0, reset: 0, other: 0, durationMs: 0, windows: [], samples: [] };
  for (const p of parts) {
    for (const k of ['requests', 'ok', 'non200', 'refused', 'reset', 'other', 'durationMs'] as const) out[k] += p[k];
    out.windows.push(...p.windows);
    out.samples.push(...p.samples);
  }
  out.samples = out.samples.slice(0, 10);
  return out;
}

function result(label: string, blocks: (Block & { settle?: PhaseCounts })[], problems: string[]): VariantResult {
  // Each steady phase is shared by the reload phases on either side of it: count it once.
  const steadyParts = [...new Set(blocks.flatMap((b) => [b.before, b.after]))];
  const steadyOverall = steadyParts.map((p) => phaseResult(p, WINDOW_MS).rpsOverall);
  const rates = INTERVALS_MS.map((intervalMs): RateResult => {
    const mine = blocks.filter((b) => b.intervalMs === intervalMs);
    const during = phaseResult(merge(mine.map((b) => b.during)), WINDOW_MS);
    const cpu = mine.map((b) => b.supervisorCpuPerSecMs).filter((c): c is number => c !== undefined);
    return {
      intervalMs,
      asked: mine.reduce((a, b) => a + b.asked, 0),
      done: mine.reduce((a, b) => a + b.done, 0),
      reloadsFailed: mine.reduce((a, b) => a + (b.reloadsFailed ?? 0), 0),
      during,
      ratios: summarize(mine.map((b) => phaseResult(b.during, WINDOW_MS).rpsOverall / phaseResult(merge([b.before, b.after]), WINDOW_MS).rpsOverall)),
      ratiosMedian: summarize(mine.map((b) => phaseResult(b.during, WINDOW_MS).rps.median / phaseResult(merge([b.before, b.after]), WINDOW_MS).rps.median)),
      ...(cpu.length ? { supervisorCpuPerSecMs: cpu.reduce((a, c) => a + c, 0) / cpu.length } : {}),
      failed: during.requests - during.ok,
      loadavg: mine.map((b) => b.loadavg),
    };
  });
  const everything = merge([...steadyParts, ...blocks.flatMap((b) => [b.during, ...(b.settle ? [b.settle] : [])])]);
  return {
    label,
    steady: phaseResult(merge(steadyParts), WINDOW_MS),
    steadyDrift: Math.max(...steadyOverall) / Math.min(...steadyOverall),
    rates,
    failedTotal: everything.requests - everything.ok,
    requestsTotal: everything.requests,
    failureSamples: everything.samples,
    problems: [...new Set(problems)].slice(0, 10),
  };
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const x = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–');
const spread = (s: Summary): string => (s.samples > 1 ? `${x(s.min)}–${x(s.max)}` : '');
const reloadsOf = (r: RateResult): string => `${r.asked} / ${r.done}${r.reloadsFailed ? ` (${r.reloadsFailed} failed)` : ''}`;
const loads = (r: RateResult): string => r.loadavg.map((l) => l.split(',')[0]).join(' · ');

function print(results: VariantResult[], m: ReturnType<typeof machine>, skipped: Record<string, string>): string {
  console.log(`\n# Throughput while reloading every ${INTERVALS_MS.map((i) => `${i / 1000} s`).join(', ')} — ${KIND} × ${CLIENTS}, ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}\n`);
  console.log(`Machine: ${machineLine(m)}`);
  console.log(loadLine(m));
  for (const [sys, why] of Object.entries(skipped)) console.log(`SKIPPED ${sys}: ${why}`);
  console.log(
    [
      `- Every system runs from the start; each round gives each in turn (order rotated per round) ${LOAD_WARMUP_MS / 1000} s of load not counted, a steady-state phase of ${BASELINE_MS / 1000} s, then for each interval (order rotated per round) a reload phase of ${PHASE_MS / 1000} s, a settle until the last reload has finished (not counted), and another steady-state phase. Each reload phase is compared with the steady-state phases on either side of it.`,
      '- Reloads are asked on a fixed schedule by signal (Baton: SIGHUP to the supervisor; HAProxy: SIGUSR2 to the master), whether or not the previous one has finished. Baton folds a reload asked while one is starting (or warming up) into that one: "asked / done" counts both.',
      `- Samples: 200 OK per ${WINDOW_MS} ms window, all rounds pooled. "vs steady" is per round, then the median over rounds (min–max beside it): whole phase = every 200 OK of the phase over its duration, so short dips count in full (a window median hides them when reloads are 2 s apart).`,
      '- Failed = any request that did not end in 200 OK (refused, reset, non-200, 10 s timeout), in any phase.',
      '- Load avg = the 1-minute load average at the end of each round\'s phase: the machine is shared.',
    ].join('\n'),
  );
  const rows: string[][] = [];
  for (const r of results) {
    const s = r.steady.rps;
    rows.push([r.label, 'steady', '', String(s.samples), int(s.median), `${int(s.p10)}–${int(s.p90)}`, '1.00×', `1.00× (drift ${x(r.steadyDrift)})`, String(r.steady.requests - r.steady.ok), '']);
    for (const p of r.rates) {
      const d = p.during.rps;
      rows.push([r.label, `${p.intervalMs / 1000} s`, reloadsOf(p), String(d.samples), int(d.median), `${int(d.p10)}–${int(d.p90)}`, `${x(p.ratiosMedian.median)} ${spread(p.ratiosMedian)}`, `${x(p.ratios.median)} ${spread(p.ratios)}`, String(p.failed), loads(p)]);
    }
  }
  console.log(`\n${boxTable(['System', 'Reload every', 'Reloads asked / done', 'Samples', 'Median req/s', 'Spread (p10–p90)', 'vs steady (window median)', 'vs steady (whole phase)', 'Failed', 'Load avg'], rows)}\n`);
  for (const r of results) {
    console.log(`${r.label}: ${r.failedTotal} failed of ${r.requestsTotal.toLocaleString('en-US')} requests${r.failureSamples.length ? ` (first: ${r.failureSamples.join('; ')})` : ''}`);
    const cpu = r.rates.filter((p) => p.supervisorCpuPerSecMs !== undefined).map((p) => `${p.intervalMs / 1000} s: ${p.supervisorCpuPerSecMs!.toFixed(0)} ms/s`);
    if (cpu.length) console.log(`  supervisor CPU during the reload phases: ${cpu.join(', ')}`);
    if (r.steadyDrift > 1.2) console.log(`  NOTE: its steady-state phases differ by up to ${x(r.steadyDrift)}: the machine's load changed during the run`);
    if (r.problems.length) console.log(`  logged: ${r.problems.join(' | ')}`);
    const at1 = r.rates.find((p) => p.intervalMs === 1000);
    if (at1) console.log(`  at 1 reload/s: ${x(at1.ratios.median)} of steady state (whole phase, median of ${at1.ratios.samples}), target ≥ ${TARGET_RATIO}×: ${at1.ratios.median >= TARGET_RATIO ? 'met' : 'NOT met'}`);
  }
  const md = [
    '| System | Reload every | Reloads asked / done | req/s, median (p10–p90) of 250 ms windows | vs steady, window median | vs steady, whole phase | Failed requests | Load avg (1 min) |',
    '|---|---|---:|---|---:|---:|---:|---|',
    ...results.flatMap((r) => [
      `| ${r.label} | steady | | ${int(r.steady.rps.median)} (${int(r.steady.rps.p10)}–${int(r.steady.rps.p90)}) | 1.00× | 1.00× (drift ${x(r.steadyDrift)}) | ${r.steady.requests - r.steady.ok} | |`,
      ...r.rates.map(
        (p) =>
          `| ${r.label} | ${p.intervalMs / 1000} s | ${reloadsOf(p)} | ${int(p.during.rps.median)} (${int(p.during.rps.p10)}–${int(p.during.rps.p90)}) | ${x(p.ratiosMedian.median)} ${spread(p.ratiosMedian)} | **${x(p.ratios.median)}** ${spread(p.ratios)} | ${p.failed} | ${loads(p)} |`,
      ),
    ]),
  ].join('\n');
  console.log(`\nFor the README (${machineLine(m)}):\n\n${md}\n`);
  return md;
}

/** `list` turned left by `n`: each round starts with a different element, so no variant or interval always runs first. */
const rotate = <T>(list: T[], n: number): T[] => list.map((_, i) => list[(i + n) % list.length]!);

async function main(): Promise<void> {
  const hv = haproxyVersion();
  const m = machine(hv);
  const wanted = list(opts.systems);
  const variants: Variant[] = [];
  const skipped: Record<string, string> = {};
  if (wanted.includes('baton')) {
    for (const w of WARMUPS) {
      const ms = durationMs(w);
      const name = `rates-${variants.length}`;
      variants.push({ label: `Baton, warmup ${ms === 0 ? '0' : w}`, settleMs: SETTLE_MS + ms, start: () => startBaton('reload', { name, config: ms > 0 ? { warmup: w } : {} }) });
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
  const markdown = print(results, m, skipped);
  const file = writeResults(opts.out ?? uniqueResultsFile('reload-rates'), {
    date: new Date().toISOString(),
    command: `npm run bench:reload-rates -- ${process.argv.slice(2).join(' ')}`.trim(),
    commit: gitCommit(),
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

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
process.exit();
