// Turns load counts and reload samples into figures, and prints them (box tables like undici's
// benchmarks, plus a markdown table for the README).
import type { Kind, PhaseCounts } from './load.ts';
import { summarize, type Machine, type Summary } from './stats.ts';
import type { ReloadSample } from './target.ts';
import { SYSTEM_LABEL, type System } from './target.ts';

export interface PhaseResult {
  requests: number;
  ok: number;
  refused: number;
  reset: number;
  non200: number;
  other: number;
  durationMs: number;
  /** 200 OK responses per second, one sample per window. */
  rps: Summary;
  /** ok / duration over the whole phase. */
  rpsOverall: number;
  errorsPer10k: { refused: number; reset: number; non200: number; other: number; total: number };
  errorSamples: string[];
}

export interface KindResult {
  system: System;
  kind: Kind;
  clients: number;
  reloads: number;
  baseline: PhaseResult;
  during: PhaseResult;
  /** Median windowed throughput during reloads / during the baseline. */
  ratio: number;
  /** The same with whole-phase throughput (ok / duration). */
  ratioOverall: number;
  /** Median throughput of the baseline after the reloads / before them: far from 1 = the machine's load changed. */
  baselineDrift: number;
  latencyMs: { probe: Summary; reported: Summary; supervisorReady?: Summary };
  probeAttempts: number;
  probeErrors: string[];
}

export function phaseResult(c: PhaseCounts, windowMs: number): PhaseResult {
  const per10k = (n: number): number => (c.requests === 0 ? NaN : (n / c.requests) * 10_000);
  const errors = c.refused + c.reset + c.non200 + c.other;
  return {
    requests: c.requests,
    ok: c.ok,
    refused: c.refused,
    reset: c.reset,
    non200: c.non200,
    other: c.other,
    durationMs: Math.round(c.durationMs),
    rps: summarize(c.windows.map((n) => (n * 1000) / windowMs)),
    rpsOverall: Math.round((c.ok * 1000) / c.durationMs),
    errorsPer10k: { refused: per10k(c.refused), reset: per10k(c.reset), non200: per10k(c.non200), other: per10k(c.other), total: per10k(errors) },
    errorSamples: c.samples,
  };
}

/** The baseline is measured before and after the reloads, so a drift of the machine's load shows. */
function merge(a: PhaseCounts, b: PhaseCounts): PhaseCounts {
  return {
    requests: a.requests + b.requests,
    ok: a.ok + b.ok,
    non200: a.non200 + b.non200,
    refused: a.refused + b.refused,
    reset: a.reset + b.reset,
    other: a.other + b.other,
    durationMs: a.durationMs + b.durationMs,
    newConnections: a.newConnections + b.newConnections,
    windows: [...a.windows, ...b.windows],
    samples: [...a.samples, ...b.samples].slice(0, 10),
  };
}

export function kindResult(
  system: KindResult['system'],
  kind: Kind,
  clients: number,
  phases: Record<string, PhaseCounts>,
  samples: ReloadSample[],
  windowMs: number,
): KindResult {
  const before = phases['baseline-before']!;
  const after = phases['baseline-after']!;
  const baseline = phaseResult(merge(before, after), windowMs);
  const during = phaseResult(phases.reloads!, windowMs);
  const ready = samples.map((s) => s.readyMs).filter((v): v is number => v !== undefined);
  return {
    system,
    kind,
    clients,
    reloads: samples.length,
    baseline,
    during,
    ratio: during.rps.median / baseline.rps.median,
    baselineDrift: phaseResult(after, windowMs).rps.median / phaseResult(before, windowMs).rps.median,
    ratioOverall: during.rpsOverall / baseline.rpsOverall,
    latencyMs: {
      probe: summarize(samples.map((s) => s.probeMs)),
      reported: summarize(samples.map((s) => s.reportedMs)),
      ...(ready.length > 0 ? { supervisorReady: summarize(ready) } : {}),
    },
    probeAttempts: samples.reduce((a, s) => a + s.probeAttempts, 0),
    probeErrors: samples.flatMap((s) => s.probeErrors).slice(0, 20),
  };
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const rps = (n: number): string => `${int(n)} req/s`;
const ms = (n: number): string => (!Number.isFinite(n) ? '–' : n < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`);
const ratio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–');
const rate = (n: number): string => (!Number.isFinite(n) ? '–' : n === 0 ? '0' : n < 0.1 ? n.toFixed(3) : n.toFixed(1));
const label = (r: KindResult): string => `${SYSTEM_LABEL[r.system]} ${r.kind}`;

/** A box table in the style of undici's benchmark output. */
export function boxTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (l: string, m: string, r: string): string => l + widths.map((w) => '─'.repeat(w + 2)).join(m) + r;
  const row = (cells: string[]): string => '│' + cells.map((c, i) => ` ${c.padEnd(widths[i]!)} `).join('│') + '│';
  return [line('┌', '┬', '┐'), row(headers), line('├', '┼', '┤'), ...rows.map(row), line('└', '┴', '┘')].join('\n');
}

export function figuresTable(results: KindResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    const b = r.baseline.rps;
    const d = r.during.rps;
    const p = r.latencyMs.probe;
    rows.push([`${label(r)}: baseline throughput`, String(b.samples), rps(b.median), `${int(b.p10)}–${int(b.p90)}`, '1.00×']);
    rows.push([`${label(r)}: throughput during reloads`, String(d.samples), rps(d.median), `${int(d.p10)}–${int(d.p90)}`, ratio(r.ratio)]);
    rows.push([`${label(r)}: reload → new process serves`, String(p.samples), ms(p.median), `${ms(p.p10)}–${ms(p.p90)} (p99 ${ms(p.p99)})`, '']);
  }
  return boxTable(['Tests', 'Samples', 'Median', 'Spread (p10–p90)', 'vs baseline'], rows);
}

export function errorsTable(results: KindResult[]): string {
  const rows = results.map((r) => {
    const d = r.during;
    const e = d.errorsPer10k;
    const base = r.baseline.requests - r.baseline.ok;
    return [label(r), int(d.requests), `${d.refused} (${rate(e.refused)})`, `${d.reset} (${rate(e.reset)})`, `${d.non200} (${rate(e.non200)})`, `${d.other} (${rate(e.other)})`, rate(e.total), String(base)];
  });
  return boxTable(['Errors during reloads: count (per 10k)', 'Requests', 'Refused', 'Reset', 'Non-200', 'Other', 'Total /10k', 'Baseline errors'], rows);
}

export function latencyTable(results: KindResult[]): string {
  const rows = results.map((r) => {
    const p = r.latencyMs.probe;
    const rep = r.latencyMs.reported;
    const ready = r.latencyMs.supervisorReady;
    return [
      label(r),
      `${ms(p.median)} / ${ms(p.p99)}`,
      `${ms(p.min)}–${ms(p.max)}`,
      `${ms(rep.median)} / ${ms(rep.p99)}`,
      ready ? `${ms(ready.median)} / ${ms(ready.p99)}` : 'n/a',
      `${(r.probeAttempts / Math.max(1, r.reloads)).toFixed(1)}, ${r.probeErrors.length} errors`,
    ];
  });
  return boxTable(['Reload latency', 'Probe p50 / p99', 'Probe min–max', 'Self-reported p50 / p99', 'Baton readyMs p50 / p99', 'Probes per reload'], rows);
}

export function markdownTable(results: KindResult[]): string {
  const out = [
    '| System | Clients | Reloads | Errors per 10k requests (refused / reset / non-200 / other) | Throughput during reloads vs baseline (median of 250 ms windows) | Reload → new process serves, p50 / p99 |',
    '|---|---|---:|---|---|---|',
  ];
  for (const r of results) {
    const e = r.during.errorsPer10k;
    out.push(
      `| ${SYSTEM_LABEL[r.system]} | ${r.kind} × ${r.clients} | ${r.reloads} | ${rate(e.total)} (${rate(e.refused)} / ${rate(e.reset)} / ${rate(e.non200)} / ${rate(e.other)}) | ` +
        `${ratio(r.ratio)} (${rps(r.during.rps.median)} vs ${rps(r.baseline.rps.median)}) | ${ms(r.latencyMs.probe.median)} / ${ms(r.latencyMs.probe.p99)} |`,
    );
  }
  return out.join('\n');
}

export function machineLine(m: Machine): string {
  return `${m.cpu} × ${m.cores} cores, Node ${m.node}, Linux ${m.kernel} ${m.arch} (${m.os})${m.haproxy ? `, HAProxy ${m.haproxy}` : ''}`;
}

export function loadLine(m: Machine): string {
  return `1-min load average at start: ${m.loadavgAtStart} on ${m.cores} cores${m.loadavgAtStart > m.cores / 2 ? ' (the machine was not idle: treat absolute numbers with care)' : ''}`;
}
