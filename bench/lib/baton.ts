// Baton under test: `baton run` on a temp config, the SDK fixture test/fixtures/http-app.ts as the
// app, reloaded by POST /reload on the control socket, or (mode `upgrade`) with the supervisor
// itself replaced by POST /upgrade, each successor tracked by pid.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { stringify } from 'yaml';
import { monotonicMs, type ReloadTiming } from '../../shared/reload-timing.ts';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { byBodyGeneration, byBodyPid, waitForNewIdentity } from './probe.ts';
import { alive, cpuMsOf, onCleanup, sleep, start, stderrOf, track } from './procs.ts';
import type { ReloadSample, Target, Trigger } from './target.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE_FLAGS = ['--disable-warning=ExperimentalWarning'];

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** Workers per generation and how the kernel hands them connections (`npm run bench:reload -- --workers 2`). */
export interface BatonBenchOptions {
  workers?: number;
  balance?: 'shared' | 'reuseport';
  /** The instance's name (two instances at once need two). @default 'bench' */
  name?: string;
  /** The program (or a function of the config file's path, for one that reads it too). @default test/fixtures/http-app.ts (SDK) */
  command?: string[] | ((configPath: string) => string[]);
  /** More config keys (`preload: off`, `env`…). */
  config?: Record<string, unknown>;
  /** Node flags for the generations, before the app (the default command only): V8's tiering, say. */
  nodeFlags?: string[];
  /** More environment for the supervisor process. */
  supervisorEnv?: Record<string, string>;
  /** Where the bench's `baton reload` commands run from: the compiled dist/, as an installed package, or the checkout's sources. @default 'sources' */
  cliFrom?: 'dist' | 'sources';
}

/**
 * Runs `node ARGS` with cpu-at-exit.cjs preloaded; resolves with the CPU (ms, user + system) the
 * process used, read from `cpuFile`, once it has exited 0.
 */
export function timedNode(args: string[], env: Record<string, string>, cpuFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const argv = ['--require', path.join(ROOT, 'bench/lib/cpu-at-exit.cjs'), ...args];
    const child = execFile(process.execPath, argv, { env: { ...process.env, ...env, BENCH_CPU_FILE: cpuFile }, timeout: 60_000 }, (err, _out, stderr) => {
      if (err) return reject(new Error(`node ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      const mine = fs.readFileSync(cpuFile, 'utf8').split('\n').find((l) => l.startsWith(`${child.pid} `));
      if (!mine) return reject(new Error(`node ${args.join(' ')} reported no CPU time`));
      const [, user, sys] = mine.split(' ').map(Number);
      resolve(((user ?? NaN) + (sys ?? NaN)) / 1000);
    });
    track(child.pid, `node ${args[0]}`);
  });
}

export async function startBaton(mode: 'reload' | 'upgrade', options: BatonBenchOptions = {}): Promise<Target> {
  const workers = options.workers ?? 1;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-'));
  fs.chmodSync(dir, 0o700);
  const configPath = path.join(dir, 'baton.yaml');
  const name = options.name ?? 'bench';
  const socketPath = path.join(dir, 'run', `${name}.sock`);
  fs.writeFileSync(
    configPath,
    stringify({
      name,
      command: typeof options.command === 'function' ? options.command(configPath) : (options.command ?? [process.execPath, ...NODE_FLAGS, ...(options.nodeFlags ?? []), path.join(ROOT, 'test/fixtures/http-app.ts')]),
      listeners: [{ name: 'http', address: '127.0.0.1:0' }],
      'ready-timeout': '20s',
      'drain-timeout': '10s',
      'shutdown-timeout': '2s',
      ...(workers > 1 ? { workers, balance: options.balance ?? 'reuseport' } : {}),
      ...options.config,
    }),
  );
  const lines: LogLine[] = [];
  const problems: string[] = [];
  const childPids = new Set<number>();
  /** Promotions after a reload, and reloads that failed, as the supervisor logged them. */
  let promotions = 0;
  /** Each promoted generation process's CPU at its ready message and when that was (ReloadTiming.child). */
  const readyOf = new Map<number, { cpuMs: number; at: number }>();
  let reloadFailures = 0;
  let onLine: ((l: LogLine) => void) | undefined;
  const sup = start('baton supervisor', process.execPath, [...NODE_FLAGS, path.join(ROOT, 'bin/baton'), 'run', '--config', configPath], {
    env: { ...process.env, BATON_RUNTIME_DIR: path.join(dir, 'run'), ...options.supervisorEnv },
    onLine: (text) => {
      let l: LogLine;
      try {
        l = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      if (typeof l.childPid === 'number') {
        childPids.add(l.childPid);
        track(l.childPid, `baton generation ${String(l.generation)}`);
      }
      if (l.event === 'generation-active' && l.why === 'reload') promotions += 1;
      const child = (l.timing as ReloadTiming | undefined)?.child;
      if (l.event === 'generation-active' && typeof l.childPid === 'number' && child?.cpuMs !== undefined) readyOf.set(l.childPid, { cpuMs: child.cpuMs, at: child.readySent });
      if (l.event === 'reload-failed') reloadFailures += 1;
      if (l.level >= 40) problems.push(`[${l.level >= 50 ? 'error' : 'warn'}] ${l.msg}${l.generation ? ` (generation ${String(l.generation)})` : ''}`);
      lines.push(l);
      if (lines.length > 5_000) lines.splice(0, 1_000);
      onLine?.(l);
    },
  });
  const exited = new Promise<void>((r) => sup.once('exit', () => r()));
  onCleanup(async () => {
    if (sup.exitCode === null && sup.signalCode === null) {
      sup.kill('SIGTERM'); // Baton drains every generation, then exits
      await Promise.race([exited, sleep(6_000)]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const first = await new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Baton did not start within 30 s: ${stderrOf(sup).slice(-1000)}`)), 30_000);
    sup.once('exit', (code) => reject(new Error(`Baton exited (code ${code}) at start: ${stderrOf(sup).slice(-1000)}`)));
    const check = (l: LogLine): void => {
      if (l.event !== 'generation-active' || l.generation !== 1) return;
      clearTimeout(timer);
      resolve(l);
    };
    lines.forEach(check);
    onLine = check;
  });
  void first;
  onLine = undefined;
  const address = String(lines.find((l) => l.event === 'listening')?.address ?? '');
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  if (!port) throw new Error(`no listening address in Baton's log (got '${address}')`);

  // The supervisor serving now: the first one, then each successor an upgrade started.
  let supervisorPid = sup.pid as number;
  const upgrade = mode === 'upgrade';
  /** The supervisor's record of a reload's promotion: the first 'active' record with timing after generation `after`. */
  let lastGeneration = Number(first.generation);
  const promotion = (timeoutMs: number): Promise<LogLine & { generation: number; timing: ReloadTiming }> =>
    new Promise((resolve, reject) => {
      const match = (l: LogLine): l is LogLine & { generation: number; timing: ReloadTiming } =>
        typeof l.timing === 'object' && l.why === 'reload' && typeof l.generation === 'number' && l.generation > lastGeneration;
      const seen = lines.find(match);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => {
        onLine = undefined;
        reject(new Error(`no promotion after generation ${lastGeneration} in Baton's log within ${timeoutMs} ms`));
      }, timeoutMs);
      onLine = (l) => {
        if (!match(l)) return;
        clearTimeout(timer);
        onLine = undefined;
        resolve(l);
      };
    });
  /**
   * `baton reload` as an operator types it: a new Node process running bin/baton, finding the
   * instance by name; resolves with the CPU (ms) the command used, which cpu-at-exit.cjs reports.
   */
  const cliCpu = path.join(dir, 'cli-cpu.txt');
  const cli = (): Promise<number> => timedNode(
      [path.join(ROOT, 'bin/baton'), 'reload', '--name', name],
      { BATON_RUNTIME_DIR: path.join(dir, 'run'), BATON_DIST: options.cliFrom === 'dist' ? '1' : (process.env.BATON_DIST ?? '') },
      cliCpu,
    );
  /** A reload by SIGHUP or by `baton reload`; its figures from the supervisor's record of the promotion. */
  async function reloadBy(trigger: Trigger, old: string, probeIntervalMs: number): Promise<ReloadSample> {
    const promoted = promotion(60_000);
    const t0 = performance.now();
    const askedAt = monotonicMs();
    const seen = waitForNewIdentity(port, workers > 1 ? byBodyGeneration : byBodyPid, old, t0, 30_000, probeIntervalMs);
    let done: Promise<number>;
    let cpu: Promise<number | undefined> = Promise.resolve(undefined);
    if (trigger === 'signal') {
      process.kill(supervisorPid, 'SIGHUP');
      done = promoted.then(() => performance.now() - t0);
    } else {
      cpu = cli();
      done = cpu.then(() => performance.now() - t0);
    }
    const [record, reportedMs, probe, cliCpuMs] = await Promise.all([promoted, done, seen, cpu]);
    lastGeneration = record.generation;
    if (typeof record.childPid === 'number') track(record.childPid, 'baton generation');
    return {
      probeMs: probe.ms,
      reportedMs,
      ...(typeof record.readyMs === 'number' ? { readyMs: record.readyMs } : {}),
      probeAttempts: probe.attempts,
      probeErrors: probe.errors,
      identity: probe.identity,
      trigger,
      askedAt,
      timing: record.timing,
      ...(cliCpuMs !== undefined ? { cliCpuMs } : {}),
    };
  }

  return {
    system: upgrade ? 'baton-upgrade' : options.config?.standby ? 'baton-standby' : 'baton',
    describe: upgrade
      ? 'Baton replaces its supervisor process (POST /upgrade): a new supervisor takes the held socket and the stats segment and starts a generation; the old one drains its generation and exits'
      : `Baton reloads the app: a new generation of test/fixtures/http-app.ts (SDK)${workers > 1 ? `, ${workers} workers (balance: ${options.balance ?? 'reuseport'})` : ''}${options.config?.standby ? ', woken from a standby booted ahead (standby: true)' : ''} takes the held socket, the old one drains`,
    port,
    controlSocket: socketPath,
    identify: workers > 1 ? byBodyGeneration : byBodyPid,
    triggers: upgrade ? [] : ['signal', 'cli'],
    supervisorCpuMs: () => cpuMsOf(supervisorPid),
    supervisorPid: () => supervisorPid,
    cpu: { tally: 'body-pid', supervisorPid: () => supervisorPid, ready: (pid) => readyOf.get(pid) },
    ask: () => void process.kill(supervisorPid, 'SIGHUP'),
    reloadsDone: () => Promise.resolve(promotions),
    reloadsFailed: () => reloadFailures,
    async reload(old: string, trigger: Trigger = 'api', probeIntervalMs = 0): Promise<ReloadSample> {
      if (trigger !== 'api') return reloadBy(trigger, old, probeIntervalMs);
      const t0 = performance.now();
      const askedAt = monotonicMs();
      const post = controlRequest(socketPath, 'POST', upgrade ? '/upgrade' : '/reload', 60_000).then((r) => ({ r, ms: performance.now() - t0 }));
      const seen = waitForNewIdentity(port, workers > 1 ? byBodyGeneration : byBodyPid, old, t0, 30_000, probeIntervalMs);
      const [{ r, ms }, probe] = await Promise.all([post, seen]);
      const body = r.body as { ok: boolean; pid?: number; generation?: number; readyMs?: number; timing?: ReloadTiming; error?: { message: string } };
      if (!body.ok) throw new Error(`${mode} failed: ${body.error?.message ?? JSON.stringify(body)}`);
      if (upgrade) {
        supervisorPid = body.pid as number;
        track(supervisorPid, 'baton supervisor (upgraded)');
      } else {
        track(body.pid, 'baton generation');
        lastGeneration = body.generation ?? lastGeneration;
        if (workers === 1 && String(body.pid) !== probe.identity) problems.push(`probe saw pid ${probe.identity} but POST /reload reported pid ${body.pid}`);
      }
      return {
        probeMs: probe.ms,
        reportedMs: ms,
        ...(body.readyMs !== undefined ? { readyMs: body.readyMs } : {}),
        ...(body.timing ? { timing: body.timing } : {}),
        trigger,
        askedAt,
        probeAttempts: probe.attempts,
        probeErrors: probe.errors,
        // The pid the supervisor promoted: the probe's first answer from a pid other than `old` can come from an older
        // generation, which accepts for a moment after it is told to drain; the next reload must wait for one newer than this.
        identity: upgrade || workers > 1 ? probe.identity : String(body.pid),
      };
    },
    problems: () => [...problems],
    async stop() {
      if (!alive(supervisorPid)) return;
      process.kill(supervisorPid, 'SIGTERM');
      const deadline = Date.now() + 15_000;
      while (alive(supervisorPid) && Date.now() < deadline) await sleep(20);
      const left = [...childPids].filter(alive);
      if (left.length > 0) problems.push(`generations still alive after the supervisor stopped: ${left.join(', ')}`);
    },
  };
}
