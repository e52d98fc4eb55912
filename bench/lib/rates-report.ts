// bench:reload-rates' figures: per system, its steady state and each reload rate against it,
// as a box table, notes and a markdown table for the README.
import type { Kind, PhaseCounts } from './load.ts';
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
  perRound: { round: number; beforeRps: number; duringRps: number; afterRps: number; lowestWindowRps: number; lowestSteadyWindowRps: number }[];
}

export interface VariantResult {
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

/** Phases added up: counts, durations and windows. */
export function mergeCounts(parts: PhaseCounts[]): PhaseCounts {
  const out: PhaseCounts = { requests: 0, ok: 0, non200: 0, refused: 0, reset: 0, other: 0, durationMs: 0, windows: [], samples: [] };
  for (const p of parts) {
    for (const k of ['requests', 'ok', 'non200', 'refused', 'reset', 'other', 'durationMs'] as const) out[k] += p[k];
    out.windows.push(...p.windows);
    out.samples.push(...p.samples);
  }
  out.samples = out.samples.slice(0, 10);
  return out;
}


const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
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
