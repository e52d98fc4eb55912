// Many reloads in a row (1,000 by default) of a trivial SDK app under a light load: does the
// supervisor's CPU per reload and its RSS stay flat, and does every request succeed?
// `npm run bench:reload-soak -- --help` for options.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { startBaton } from './lib/baton.ts';
import { startLoad, type PhaseCounts } from './lib/load.ts';
import { currentIdentity } from './lib/probe.ts';
import { alive, cleanupAll, installGuards, sleep, trackedPids, runBench } from './lib/procs.ts';
import { boxTable, loadLine, machineLine } from './lib/report.ts';
import { gitCommit, loadNow, uniqueResultsFile, writeResults } from './lib/results.ts';
import { machine, summarize } from './lib/stats.ts';

const { values: opts } = parseArgs({
  options: {
    reloads: { type: 'string', default: '1000' },
    window: { type: 'string', default: '100' },
    clients: { type: 'string', default: '2' },
    'pause-ms': { type: 'string', default: '10' },
    'gap-ms': { type: 'string', default: '20' },
    standby: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    'max-seconds': { type: 'string', default: '600' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`usage: npm run bench:reload-soak -- [--reloads 1000] [--window 100] [--clients 2] [--pause-ms 10] [--gap-ms 20]
                                 [--standby] [--quick] [--max-seconds 600] [--out FILE.json]
  --reloads N      reloads in a row (POST /reload, each one waited for: promoted, and the new pid answering)
  --window N       reloads per window of figures
  --clients N      keep-alive clients of light load, each pausing --pause-ms after every response
  --gap-ms N       pause after each reload
  --standby        the app with \`standby: true\` (each reload wakes a process booted ahead)
  --quick          --reloads 200 --window 20 (~1.5 min)
  --max-seconds N  time bound: the reloads stop in time to report within it (the figures then say how many ran)
`);
  process.exit(0);
}
const num = (name: keyof typeof opts, min: number, max: number): number => {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return v;
};
const RELOADS = opts.quick ? 200 : num('reloads', 2, 100_000);
const WINDOW = opts.quick ? 20 : num('window', 1, 10_000);
if (RELOADS < 2 * WINDOW) throw new Error('--reloads must be at least two windows (--window)');
const CLIENTS = num('clients', 1, 64);
const PAUSE_MS = num('pause-ms', 0, 10_000);
const GAP_MS = num('gap-ms', 0, 10_000);
const MAX_MS = num('max-seconds', 30, 24 * 3600) * 1000;
/** Kept for stopping every process and printing, out of --max-seconds. */
const REPORT_MS = 25_000;
const IDLE_MS = 3_000;
/** The probe that sees the new pid answer: one new connection every 5 ms, light beside the reload. */
const PROBE_INTERVAL_MS = 5;
/** "Flat": the last window within these ratios of the first. */
const FLAT_CPU = 1.25;
const FLAT_RSS = 1.1;
const log = (s: string): void => void process.stderr.write(`${s}\n`);
/** Read at the start: the code that runs, whatever is committed meanwhile. */
const COMMIT = gitCommit();
const began = performance.now();
// The hard stop, past the point where the loop stops by itself: only if cleaning up hangs.
installGuards(MAX_MS + 30_000);

/** A size field (KiB) of /proc/PID/status: VmRSS (resident), RssAnon (its anonymous part: heap, not mapped files). */
function statusKiB(pid: number, field: 'VmRSS' | 'RssAnon'): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}
const rssKiB = (pid: number): number => statusKiB(pid, 'VmRSS');

const fdCount = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length;

/** What `pid`'s fds point at, by kind (`socket`, `pipe`, `anon_inode:[eventfd]`, a file's path), counted. */
function fdKinds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let link: string;
    try {
      link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const kind = link.replace(/:\[\d+\]$/, '');
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}

/** The kinds whose count differs between two fdKinds() snapshots: `kind: before → after`. */
function fdDiff(before: Record<string, number>, after: Record<string, number>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]).map((k) => `${k}: ${before[k] ?? 0} → ${after[k] ?? 0}`);
}

/** At rest: the old generations gone (as many processes below the supervisor as before the reloads), within `ms`. */
async function atRest(pid: number, processes: number, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (descendants(pid).length > processes) {
    if (performance.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/** Every process below `pid` (generations, their exec shims, anything they started), by /proc/PID/task/TID/children. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let kids = '';
      try {
        kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(' ').filter(Boolean).map(Number)) {
        out.push(k);
        walk(k);
      }
    }
  };
  walk(pid);
  return out;
}

interface Window {
  index: number;
  reloads: number;
  failedReloads: number;
  wallMs: number;
  /** The supervisor's CPU in the window over its reloads, its idle rate over the same time taken off. */
  cpuPerReloadMs: number;
  rssEndMiB: number;
  rssMaxMiB: number;
  /** RssAnon at the end of the window. */
  anonEndMiB: number;
  fds: number;
  descendants: number;
  probeMs: ReturnType<typeof summarize>;
  loadavg: string;
}

async function main(): Promise<void> {
  const m = machine();
  log(`machine: ${machineLine(m)}; load average ${loadNow()}`);
  const target = await startBaton('reload', { name: 'soak', ...(opts.standby ? { config: { standby: true } } : {}) });
  const pid = target.supervisorPid!();
  const load = startLoad({ port: target.port, kind: 'keep-alive', clients: CLIENTS, windowMs: 1_000, timeoutMs: 10_000, pauseMs: PAUSE_MS });
  const windows: Window[] = [];
  let identity = await currentIdentity(target.port, target.identify);
  let stoppedEarly = '';
  let counts: Record<string, PhaseCounts> = {};
  const start = { rssMiB: NaN, fds: 0, descendants: 0, fdKinds: {} as Record<string, number> };
  let rest: { rssMiB: number; anonMiB: number; fds: number; fdKinds: Record<string, number>; fdDiff: string[]; settled: boolean } | undefined;
  let idleRate = 0;
  try {
    await sleep(1_000);
    await load.phase('idle');
    const idle0 = target.supervisorCpuMs!();
    await sleep(IDLE_MS);
    idleRate = (target.supervisorCpuMs!() - idle0) / IDLE_MS;
    Object.assign(start, { rssMiB: rssKiB(pid) / 1024, fds: fdCount(pid), descendants: descendants(pid).length, fdKinds: fdKinds(pid) });
    await load.phase('soak');
    let done = 0;
    while (done < RELOADS && !stoppedEarly) {
      const w0 = performance.now();
      const cpu0 = target.supervisorCpuMs!();
      const probes: number[] = [];
      let rssMax = 0;
      let failedReloads = 0;
      const n = Math.min(WINDOW, RELOADS - done);
      let i = 0;
      for (; i < n; i++) {
        if (performance.now() - began > MAX_MS - REPORT_MS) {
          stoppedEarly = `--max-seconds ${MAX_MS / 1000} reached after ${done + i} of ${RELOADS} reloads`;
          break;
        }
        try {
          const s = await target.reload(identity, 'api', PROBE_INTERVAL_MS);
          identity = s.identity;
          probes.push(s.probeMs);
        } catch (err) {
          failedReloads += 1;
          log(`reload ${done + i + 1} failed: ${(err as Error).message}`);
          identity = await currentIdentity(target.port, target.identify);
        }
        rssMax = Math.max(rssMax, rssKiB(pid));
        if (GAP_MS) await sleep(GAP_MS);
      }
      if (i === 0) break;
      const wallMs = performance.now() - w0;
      const cpu = target.supervisorCpuMs!() - cpu0 - idleRate * wallMs;
      done += i;
      const w: Window = {
        index: windows.length + 1,
        reloads: i,
        failedReloads,
        wallMs,
        cpuPerReloadMs: cpu / i,
        rssEndMiB: rssKiB(pid) / 1024,
        rssMaxMiB: rssMax / 1024,
        anonEndMiB: statusKiB(pid, 'RssAnon') / 1024,
        fds: fdCount(pid),
        descendants: descendants(pid).length,
        probeMs: summarize(probes),
        loadavg: loadNow(),
      };
      windows.push(w);
      log(`${done}/${RELOADS} reloads: ${w.cpuPerReloadMs.toFixed(1)} ms CPU per reload, RSS ${w.rssEndMiB.toFixed(1)} MiB, ${w.fds} fds, ${w.descendants} processes below it, load ${w.loadavg}`);
    }
    // The last reload's old generation drains under the same load before the counts close.
    await sleep(1_000);
    await load.phase('end');
    counts = await load.stop();
    // The same state as before the first reload: one generation, no load. What is still open now beyond then stayed behind.
    const settled = await atRest(pid, start.descendants, 15_000);
    const kinds = fdKinds(pid);
    rest = { rssMiB: rssKiB(pid) / 1024, anonMiB: statusKiB(pid, 'RssAnon') / 1024, fds: fdCount(pid), fdKinds: kinds, fdDiff: fdDiff(start.fdKinds, kinds), settled };
  } catch (err) {
    await load.terminate();
    throw err;
  } finally {
    await target.stop().catch(() => {});
  }
  await cleanupAll();
  const stillAlive = trackedPids().filter((p) => alive(p.pid));
  const soak = counts.soak!;
  const failedRequests = soak.requests - soak.ok;
  const markdown = print(m, windows, start, rest, idleRate, soak, stoppedEarly, target.problems());
  const file = writeResults(opts.out ?? uniqueResultsFile('reload-soak'), {
    date: new Date().toISOString(),
    command: `npm run bench:reload-soak -- ${process.argv.slice(2).join(' ')}`.trim(),
    commit: COMMIT,
    machine: m,
    loadavgAtEnd: loadNow(),
    options: { reloads: RELOADS, window: WINDOW, clients: CLIENTS, pauseMs: PAUSE_MS, gapMs: GAP_MS, maxMs: MAX_MS },
    stoppedEarly: stoppedEarly || undefined,
    start,
    atRest: rest,
    idleCpuPerSecMs: idleRate * 1000,
    windows,
    requests: { total: soak.requests, ok: soak.ok, failed: failedRequests, samples: soak.samples },
    problems: target.problems(),
    markdown,
  });
  console.log(`results written to ${file}`);
  if (stillAlive.length > 0) console.log(`WARNING: processes still present after cleanup: ${stillAlive.map((p) => `${p.pid} (${p.label})`).join(', ')}`);
  if (failedRequests > 0 || windows.some((w) => w.failedReloads > 0)) process.exitCode = 1;
}

function print(
  m: ReturnType<typeof machine>,
  windows: Window[],
  start: { rssMiB: number; fds: number; descendants: number },
  rest: { rssMiB: number; anonMiB: number; fds: number; fdDiff: string[]; settled: boolean } | undefined,
  idleRate: number,
  soak: PhaseCounts,
  stoppedEarly: string,
  problems: string[],
): string {
  const total = windows.reduce((a, w) => a + w.reloads, 0);
  console.log(`\n# ${total} reloads in a row — windows of ${WINDOW}, ${CLIENTS} keep-alive clients of light load (a ${PAUSE_MS} ms pause after each response)\n`);
  console.log(`Machine: ${machineLine(m)}`);
  console.log(loadLine(m));
  if (stoppedEarly) console.log(`INCOMPLETE: ${stoppedEarly}`);
  console.log(
    [
      `- The app: test/fixtures/http-app.ts (the SDK, default config${opts.standby ? "; `standby: true`" : ""}). Each reload is POST /reload on the control socket, waited for (promoted) and seen from outside (a probe on new connections every ${PROBE_INTERVAL_MS} ms until the new pid answers), then a ${GAP_MS} ms pause.`,
      `- CPU per reload: the supervisor's user + system time (/proc/PID/stat) over the window, its idle rate before the reloads (${(idleRate * 1000).toFixed(1)} ms/s over ${IDLE_MS / 1000} s) times the window's length taken off, divided by the window's reloads.`,
      `- RSS: VmRSS (/proc/PID/status) at the end of the window, and the largest after any reload of it. Before the first reload: ${start.rssMiB.toFixed(1)} MiB, ${start.fds} fds, ${start.descendants} processes below the supervisor.`,
    ].join('\n'),
  );
  const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
  const rows = windows.map((w) => [
    String(w.index),
    String(w.reloads) + (w.failedReloads ? ` (${w.failedReloads} failed)` : ''),
    `${f1(w.cpuPerReloadMs)} ms`,
    `${f1(w.rssEndMiB)} MiB`,
    `${f1(w.rssMaxMiB)} MiB`,
    `${f1(w.anonEndMiB)} MiB`,
    String(w.fds),
    String(w.descendants),
    `${f1(w.probeMs.median)} / ${f1(w.probeMs.p90)} ms`,
    `${(w.wallMs / 1000).toFixed(0)} s`,
    w.loadavg,
  ]);
  console.log(`\n${boxTable(['Window', 'Reloads', 'Supervisor CPU per reload', 'RSS at end', 'RSS max', 'RssAnon at end', 'fds', 'Processes below', 'Reload → new pid answers p50 / p90', 'Wall', 'Load avg (1, 5, 15 min)'], rows)}\n`);
  const first = windows[0];
  const last = windows[windows.length - 1];
  const lines: string[] = [];
  if (first && last && windows.length >= 2) {
    const cpuRatio = last.cpuPerReloadMs / first.cpuPerReloadMs;
    const rssRatio = last.rssEndMiB / first.rssEndMiB;
    const cpuAll = summarize(windows.map((w) => w.cpuPerReloadMs));
    const slope = rssSlope(windows);
    const anonRatio = last.anonEndMiB / first.anonEndMiB;
    lines.push(
      `CPU per reload: first window ${f1(first.cpuPerReloadMs)} ms, last ${f1(last.cpuPerReloadMs)} ms: **${cpuRatio.toFixed(2)}×** (median over windows ${f1(cpuAll.median)} ms, ${f1(cpuAll.min)}–${f1(cpuAll.max)}): ${cpuRatio <= FLAT_CPU ? 'flat' : 'NOT flat'} (flat = within ${FLAT_CPU}×)`,
      `RSS: end of the first window ${f1(first.rssEndMiB)} MiB, of the last ${f1(last.rssEndMiB)} MiB: **${rssRatio.toFixed(2)}×**; least-squares slope over the windows after the first ${slope === undefined ? '–' : `${(slope * 1024).toFixed(0)} KiB per ${WINDOW} reloads (${((slope * 1024) / WINDOW).toFixed(1)} KiB per reload)`}: ${rssRatio <= FLAT_RSS ? 'flat' : 'NOT flat'} (flat = within ${FLAT_RSS}×)`,
      `RssAnon (the anonymous part: heaps, not mapped files): ${f1(first.anonEndMiB)} MiB → ${f1(last.anonEndMiB)} MiB, ${anonRatio.toFixed(2)}×`,
      `fds: ${start.fds} before, ${first.fds} after the first window, ${last.fds} after the last; processes below the supervisor: ${start.descendants} before, ${last.descendants} after the last window`,
    );
  }
  if (rest) {
    lines.push(
      `At rest after the reloads (load stopped, ${rest.settled ? `the old generations gone: ${start.descendants} processes below the supervisor again` : 'but old generations still running after 15 s'}): ` +
        `${rest.fds} fds (before the first reload: ${start.fds})${rest.fdDiff.length ? ` — ${rest.fdDiff.join(', ')}` : ', the same kinds'}; RSS ${f1(rest.rssMiB)} MiB (before: ${f1(start.rssMiB)} MiB), RssAnon ${f1(rest.anonMiB)} MiB`,
    );
  }
  const failed = soak.requests - soak.ok;
  lines.push(`Requests: ${failed} failed of ${soak.requests.toLocaleString('en-US')} during the reloads${soak.samples.length ? ` (first: ${soak.samples.join('; ')})` : ''}; reloads failed: ${windows.reduce((a, w) => a + w.failedReloads, 0)}`);
  const logged = [...new Set(problems)];
  if (logged.length) lines.push(`Warnings (the supervisor's log, the bench's own checks): ${problems.length}: ${logged.slice(0, 5).join(' | ')}`);
  console.log(lines.join('\n'));
  const md = [
    '| Reloads | Supervisor CPU per reload | RSS at end of window | RssAnon | fds | Load avg |',
    '|---:|---:|---:|---:|---:|---|',
    ...windows.map((w) => `| ${(w.index - 1) * WINDOW + 1}–${(w.index - 1) * WINDOW + w.reloads} | ${f1(w.cpuPerReloadMs)} ms | ${f1(w.rssEndMiB)} MiB | ${f1(w.anonEndMiB)} MiB | ${w.fds} | ${w.loadavg} |`),
  ].join('\n');
  console.log(`\nFor the README (${machineLine(m)}):\n\n${md}\n\n${lines.map((l) => `- ${l}`).join('\n')}\n`);
  return md;
}

/** Least-squares slope of the window-end RSS (MiB per window), the first window (warm-up) left out. */
function rssSlope(windows: Window[]): number | undefined {
  const pts = windows.slice(1).map((w, i) => [i, w.rssEndMiB] as const);
  if (pts.length < 2) return undefined;
  const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
  const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
  const num = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return num / den;
}

await runBench(main);
