// bench:reload-rates' figures: per system, its steady state and each reload rate against it,
// as a box table, notes and a markdown table for the README.
import type { Kind, PhaseCounts } from './load.ts';
import type { ServerTally } from './load-worker.ts';
import type { AgeBin, CpuPhase, CycleBucket } from './cpu-account.ts';
import { boxTable, loadLine, machineLine, type PhaseResult } from './report.ts';
import type { Machine, Summary } from './stats.ts';

/** How the run was set up, for the notes above the table. */
export interface RatesSetup {
  intervalsMs: number[];
  kind: Kind;
  clients: number;
  rounds: number;
  loadWarmupMs: number;
  baselineMs: number;
  phaseMs: number;
  windowMs: number;
  /** The issue's target for 1 reload/s, against the steady state. */
  targetRatio: number;
}

export interface RateResult {
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
  /** Whole-phase throughput of each round's reload phase and the steady-state phases either side, and the lowest 250 ms window (as req/s) in each: where a stall was. */
  perRound: { round: number; beforeRps: number; duringRps: number; afterRps: number; lowestWindowRps: number; lowestSteadyWindowRps: number; cpuDuring?: CpuPhase['perSec'] }[];
  /** Per round: the larger over the smaller whole-phase throughput of the steady-state phases either side of the reload phase. */
  drift: Summary;
  /** Connections the clients opened per second of the reload phases (keep-alive: reconnects after a drain's `Connection: close`). */
  newConnectionsPerSec: number;
  /** Where the CPU went in this rate's reload phases and in the steady-state phases either side (all rounds), and serving µs per request by a new generation's age. */
  cpu?: { during: CpuPhase; steady?: CpuPhase; age: AgeBin[]; cycle: CycleBucket[] };
}

export interface VariantResult {
  label: string;
  steady: PhaseResult;
  /** Largest / smallest whole-phase throughput of its steady-state phases: the machine's drift during the run. */
  steadyDrift: number;
  steadyCpu?: CpuPhase;
  steadyNewConnectionsPerSec: number;
  rates: RateResult[];
  /** Failed requests in every phase, steady ones and settles included. */
  failedTotal: number;
  requestsTotal: number;
  failureSamples: string[];
  problems: string[];
}

/** Phases added up: counts, durations and windows. */
export function mergeCounts(parts: PhaseCounts[]): PhaseCounts {
  const out: PhaseCounts = { requests: 0, ok: 0, non200: 0, refused: 0, reset: 0, other: 0, durationMs: 0, windows: [], samples: [], newConnections: 0 };
  for (const p of parts) {
    for (const k of ['requests', 'ok', 'non200', 'refused', 'reset', 'other', 'durationMs', 'newConnections'] as const) out[k] += p[k] ?? 0;
    out.windows.push(...p.windows);
    out.samples.push(...p.samples);
    if (p.byServer) out.byServer = mergeTallies([out.byServer ?? {}, p.byServer]);
  }
  out.samples = out.samples.slice(0, 10);
  return out;
}

/** Responses by serving pid added up over phases (each tally's bins on the same clock). */
export function mergeTallies(parts: Record<string, ServerTally>[]): Record<string, ServerTally> {
  const out: Record<string, ServerTally> = {};
  for (const part of parts) {
    for (const [pid, t] of Object.entries(part)) {
      const o = out[pid];
      if (!o) {
        out[pid] = { first: t.first, counts: [...t.counts] };
        continue;
      }
      const first = Math.min(o.first, t.first);
      const counts = new Array<number>(Math.max(o.first + o.counts.length, t.first + t.counts.length) - first).fill(0);
      o.counts.forEach((n, i) => (counts[o.first - first + i]! += n));
      t.counts.forEach((n, i) => (counts[t.first - first + i]! += n));
      out[pid] = { first, counts };
    }
  }
  return out;
}


const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const us = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
const x = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–');
const spread = (s: Summary): string => (s.samples > 1 ? `${x(s.min)}–${x(s.max)}` : '');
const reloadsOf = (r: RateResult): string => `${r.asked} / ${r.done}${r.reloadsFailed ? ` (${r.reloadsFailed} failed)` : ''}`;
const loads = (r: RateResult): string => r.loadavg.map((l) => l.split(',')[0]).join(' · ');

/** Prints the figures; returns the markdown table. */
export function printRates(results: VariantResult[], m: Machine, skipped: Record<string, string>, setup: RatesSetup): string {
  const { intervalsMs: INTERVALS_MS, kind: KIND, clients: CLIENTS, rounds: ROUNDS, loadWarmupMs: LOAD_WARMUP_MS, baselineMs: BASELINE_MS, phaseMs: PHASE_MS, windowMs: WINDOW_MS, targetRatio: TARGET_RATIO } = setup;
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
    for (const p of r.rates) {
      const rounds = p.perRound.map((q) => `${int(q.beforeRps)} → ${int(q.duringRps)} → ${int(q.afterRps)} (lowest window ${int(q.lowestWindowRps)}; steady ${int(q.lowestSteadyWindowRps)})`);
      console.log(`  every ${p.intervalMs / 1000} s, req/s per round, steady → reloads → steady: ${rounds.join(' | ')}`);
    }
    const at1 = r.rates.find((p) => p.intervalMs === 1000);
    if (at1) console.log(`  at 1 reload/s: ${x(at1.ratios.median)} of steady state (whole phase, median of ${at1.ratios.samples}), target ≥ ${TARGET_RATIO}×: ${at1.ratios.median >= TARGET_RATIO ? 'met' : 'NOT met'}`);
  }
  const cpuRows: string[][] = [];
  const ageRows: string[][] = [];
  const cpuMd: string[] = [];
  const ageMd: string[] = [];
  for (const r of results) {
    const phases: [string, number, CpuPhase | undefined, number][] = [['steady', r.steady.rpsOverall, r.steadyCpu, r.steadyNewConnectionsPerSec], ...r.rates.map((p): [string, number, CpuPhase | undefined, number] => [`${p.intervalMs / 1000} s`, p.during.rpsOverall, p.cpu?.during, p.newConnectionsPerSec])];
    for (const [what, rps, c, conns] of phases) {
      if (!c) continue;
      const q = c.perSec;
      const server = q.serving + q.boot + q.supervisor + q.upstream;
      const cells = [r.label, what, int(rps), int(q.load), int(q.serving), int(q.boot), int(q.supervisor), q.upstream ? int(q.upstream) : '', int(q.foreign), int(q.idle), us((server * 1000) / rps), us(((q.serving + q.upstream) * 1000) / rps), conns.toFixed(1)];
      cpuRows.push(cells);
      cpuMd.push(`| ${cells.join(' | ')} |`);
    }
    const warm = r.steadyCpu ? ((r.steadyCpu.perSec.serving + r.steadyCpu.perSec.upstream) * 1000) / r.steady.rpsOverall : NaN;
    for (const p of r.rates) {
      if (!p.cpu || !p.cpu.age.some((b) => b.requests > 0)) continue;
      const total = p.cpu.age.reduce((a, b) => a + b.requests, 0);
      const cells = [r.label, `${p.intervalMs / 1000} s`, ...p.cpu.age.map((b) => (b.requests > 0 ? `${us((b.cpuMs * 1000) / b.requests)} (${Math.round((b.requests / total) * 100)}%)` : '–')), us(warm)];
      ageRows.push(cells);
      ageMd.push(`| ${cells.join(' | ')} |`);
    }
  }
  const cpuHead = ['System', 'Phase', 'req/s', 'Load generator', 'Serving generation(s)', 'New generation boot', 'Supervisor', 'Upstream', 'Other work', 'Idle', 'Server µs/request', 'Serving µs/request', 'New connections/s'];
  const ageBins = results.flatMap((r) => r.rates).find((p) => p.cpu)?.cpu?.age ?? [];
  const ageHead = ['System', 'Reload every', ...ageBins.map((b) => `${b.fromMs}–${Number.isFinite(b.toMs) ? b.toMs : ''} ms`), 'Steady state'];
  if (cpuRows.length) {
    console.log(`\nCPU, ms per second of each phase (2 cores = 2,000), all rounds pooled; server µs/request = (serving + boot + supervisor + upstream) CPU per 200 OK:\n${boxTable(cpuHead, cpuRows)}`);
    console.log(`\nA new generation's serving CPU per request (µs) by its age since ready (share of its requests in brackets), against the steady state's:\n${boxTable(ageHead, ageRows)}`);
    console.log('\nA reload cycle: req/s (new-generation boot CPU ms/s) by the time since the latest generation said ready, reload phases pooled:');
    for (const r of results) {
      for (const p of r.rates) {
        const c = p.cpu?.cycle.filter((b) => b.ms > 0) ?? [];
        if (c.length && r.steadyCpu) console.log(`  ${r.label}, every ${p.intervalMs / 1000} s (steady ${int(r.steady.rpsOverall)}): ${c.map((b) => `${b.fromMs}: ${int(b.rps)} (${int(b.bootPerSec)})`).join(' · ')}`);
      }
    }
    for (const r of results) {
      for (const p of r.rates) console.log(`  ${r.label}, every ${p.intervalMs / 1000} s: steady-state drift either side, per round: ${x(p.drift.median)} median, ${x(p.drift.max)} max`);
    }
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
  const cpuTable = cpuMd.length
    ? [`| ${cpuHead.join(' | ')} |`, `|${cpuHead.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`, ...cpuMd, '', `| ${ageHead.join(' | ')} |`, `|${ageHead.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`, ...ageMd].join('\n')
    : '';
  console.log(`\nFor the README (${machineLine(m)}):\n\n${md}\n\n${cpuTable}\n`);
  return `${md}\n\n${cpuTable}`;
}
