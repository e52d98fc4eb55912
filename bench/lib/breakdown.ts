// Where one reload's time goes: the supervisor's and the new generation's marks (ReloadTiming,
// shared/reload-timing.ts), all on the monotonic clock, turned into consecutive steps, plus the
// bench's own view (asked → the first response from the new process).
import type { ReloadTiming } from '../../shared/reload-timing.ts';
import { boxTable } from './report.ts';
import { summarize, type Summary } from './stats.ts';
import type { ReloadSample, Trigger } from './target.ts';

interface Step {
  name: string;
  /** What the step covers, for the method notes. */
  covers: string;
  ms(t: ReloadTiming, askedAt: number): number | undefined;
}

const sub = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : a - b);

/** Consecutive steps: each starts where the one above ended, so they add up to the total. */
export const STEPS: Step[] = [
  { name: 'signal or request received', covers: 'the bench asks (kill -HUP, or spawns `baton reload`) → the supervisor’s reload() runs; for `baton reload` this is the command’s whole start-up', ms: (t, a) => sub(t.received, a) },
  { name: 'config read', covers: 're-reading and checking the config file', ms: (t) => sub(t.configRead, t.received) },
  { name: 'spawn', covers: 'setting up the generation and the spawn() call (fork + exec of the exec shim)', ms: (t) => sub(t.spawned, t.configRead) },
  // A standby (`standby: true`) started and booted before the reload was asked: it is woken instead.
  { name: 'exec → Node starts', covers: 'the shim forks and execs the command; Node’s time origin', ms: (t) => (t.child?.woken !== undefined ? undefined : sub(t.child?.start, t.spawned)) },
  { name: 'Node boot', covers: 'Node’s own bootstrap (performance.nodeTiming.bootstrapComplete)', ms: (t) => (t.child?.woken !== undefined ? undefined : sub(t.child?.booted, t.child?.start)) },
  { name: 'standby woken', covers: 'with `standby: true`, a process booted ahead hears `standby-go` and gets the generation’s environment', ms: (t) => sub(t.child?.woken, t.spawned) },
  { name: 'app import', covers: 'loading and running the app’s modules and the SDK until its first listen()', ms: (t) => sub(t.child?.listenCalled, t.child?.woken ?? t.child?.booted) },
  { name: 'listen', covers: 'listen() on the held socket until it resolves', ms: (t) => sub(t.child?.listening, t.child?.listenCalled) },
  { name: 'ready message', covers: 'ready() after the hello’s reply, and the IPC hop to the supervisor', ms: (t) => sub(t.readyReceived, t.child?.listening) },
  { name: 'promotion', covers: 'the supervisor promotes the new generation (after its warm-up, when `warmup` is set)', ms: (t) => sub(t.promoted, t.readyReceived) },
  { name: 'old generation told to drain', covers: 'drain messages written to the previous generation (canary bookkeeping included)', ms: (t) => sub(t.drainSent, t.promoted) },
];

export interface Breakdown {
  trigger: Trigger;
  samples: number;
  steps: { name: string; ms: Summary }[];
  /** Asked → the old generation told to drain (the sum of the steps). */
  total: Summary;
  /** Asked → the first response from the new process, seen by the probe (outside view). */
  firstResponse: Summary;
  /** The CPU the new generation used until its ready message (the SDK's cpuMs). */
  childCpu: Summary;
}

/** The breakdown of the reloads asked for by `trigger` (only those with the supervisor's marks count toward the steps). */
export function breakdown(trigger: Trigger, samples: ReloadSample[]): Breakdown {
  const mine = samples.filter((s) => s.trigger === trigger);
  const timed = mine.filter((s): s is ReloadSample & { timing: ReloadTiming; askedAt: number } => s.timing !== undefined && s.askedAt !== undefined);
  const values = (f: (t: ReloadTiming, a: number) => number | undefined): number[] =>
    timed.map((s) => f(s.timing, s.askedAt)).filter((v): v is number => v !== undefined);
  return {
    trigger,
    samples: mine.length,
    steps: STEPS.map((step) => ({ name: step.name, ms: summarize(values(step.ms)) })),
    total: summarize(values((t, a) => t.drainSent - a)),
    firstResponse: summarize(mine.map((s) => s.probeMs)),
    childCpu: summarize(values((t) => t.child?.cpuMs)),
  };
}

const ms = (n: number): string => (!Number.isFinite(n) ? '–' : n < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`);
const TRIGGER_LABEL: Record<Trigger, string> = { signal: 'signal', cli: 'baton reload', api: 'control API' };

/** One column per (system, trigger): p50 / p99 of each step; HAProxy has only the outside view. */
/** A column's heading: the system and how its reloads were asked for. */
export function columnLabel(system: string, trigger: Trigger): string {
  if (trigger === 'signal') return `${system}: ${system === 'HAProxy' ? 'kill -USR2' : 'kill -HUP'}`;
  if (system.startsWith('PM2')) return `${system}: pm2 reload`;
  return `${system}: ${TRIGGER_LABEL[trigger]}`;
}

export function breakdownTable(columns: { label: string; b: Breakdown; hasSteps: boolean }[]): string {
  const cell = (s: Summary | undefined, has: boolean): string => (!has || !s || s.samples === 0 ? '' : `${ms(s.median)} / ${ms(s.p99)}`);
  const rows = STEPS.map((step, i) => [step.name, ...columns.map((c) => cell(c.b.steps[i]?.ms, c.hasSteps))]);
  rows.push(['= asked → old generation told to drain', ...columns.map((c) => cell(c.b.total, c.hasSteps))]);
  rows.push(['asked → first response from the new process (probe)', ...columns.map((c) => cell(c.b.firstResponse, true))]);
  rows.push(['the new generation’s CPU until ready', ...columns.map((c) => cell(c.b.childCpu, c.hasSteps))]);
  rows.push(['reloads', ...columns.map((c) => String(c.b.samples))]);
  return boxTable(['Step (p50 / p99)', ...columns.map((c) => columnLabel(c.label, c.b.trigger))], rows);
}

/** The same as a markdown table, for the README. */
export function breakdownMarkdown(columns: { label: string; b: Breakdown; hasSteps: boolean }[]): string {
  const cell = (s: Summary | undefined, has: boolean): string => (!has || !s || s.samples === 0 ? '' : `${ms(s.median)} / ${ms(s.p99)}`);
  const out = [`| Step (p50 / p99) | ${columns.map((c) => columnLabel(c.label, c.b.trigger)).join(' | ')} |`, `|---|${columns.map(() => '---:').join('|')}|`];
  STEPS.forEach((step, i) => out.push(`| ${step.name} | ${columns.map((c) => cell(c.b.steps[i]?.ms, c.hasSteps)).join(' | ')} |`));
  out.push(`| **asked → old generation told to drain** | ${columns.map((c) => cell(c.b.total, c.hasSteps)).join(' | ')} |`);
  out.push(`| **asked → first response from the new process** | ${columns.map((c) => cell(c.b.firstResponse, true)).join(' | ')} |`);
  out.push(`| the new generation’s CPU until ready | ${columns.map((c) => cell(c.b.childCpu, c.hasSteps)).join(' | ')} |`);
  out.push(`| reloads | ${columns.map((c) => String(c.b.samples)).join(' | ')} |`);
  return out.join('\n');
}
