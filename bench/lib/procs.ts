// Every process the bench starts is registered here by pid and killed by pid at the end: on a
// normal finish, on an error, on Ctrl-C / SIGTERM, and (synchronously) when the process exits.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

const tracked = new Map<number, string>();
const cleanups: (() => Promise<void> | void)[] = [];

export function track(pid: number | undefined, label: string): void {
  if (pid !== undefined && pid > 0) tracked.set(pid, label);
}

export function trackedPids(): { pid: number; label: string }[] {
  return [...tracked].map(([pid, label]) => ({ pid, label }));
}

/** Registers an orderly shutdown step (stop a supervisor, a master…); run before the final kill. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** CPU time (ms, user + system, threads that ended included) process `pid` has used: /proc/PID/stat, in USER_HZ ticks (100/s on Linux x64). */
export function cpuMsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5), counted from the state (field 3) here.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Times process `pid`'s threads gave up the CPU to wait (voluntary context switches, every thread alive): /proc/PID/task/TID/status. */
export function sleepsOf(pid: number): number {
  let total = 0;
  let tasks: string[] = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tasks) {
    try {
      total += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return total;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Spawns and tracks a process; stdout is handed line by line to `onLine`. */
export function start(label: string, command: string, args: string[], options: SpawnOptions & { onLine?: (line: string) => void } = {}): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  track(child.pid, label);
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) options.onLine?.(line);
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString('utf8'));
    if (stderr.length > 200) stderr.shift();
  });
  (child as ChildProcess & { stderrText(): string }).stderrText = () => stderr.join('');
  return child;
}

export function stderrOf(child: ChildProcess): string {
  return (child as ChildProcess & { stderrText?: () => string }).stderrText?.() ?? '';
}

let cleaning: Promise<void> | undefined;

/** Runs a bench's `main`: a failure is printed with its stack and exit code 1; every tracked process is cleaned up, then the process exits. */
export async function runBench(main: () => Promise<void>): Promise<never> {
  try {
    await main();
  } catch (err) {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await cleanupAll();
  }
  process.exit();
}

/** Runs the orderly steps (each bounded to 8 s), then SIGKILLs every tracked pid still alive. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      await Promise.race([Promise.resolve().then(fn).catch(() => {}), sleep(8_000)]);
    }
    killRemaining();
    const deadline = Date.now() + 3_000;
    while ([...tracked.keys()].some(alive) && Date.now() < deadline) await sleep(20);
  })();
  return cleaning;
}

function killRemaining(): void {
  for (const pid of tracked.keys()) {
    if (!alive(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** Installs the handlers: Ctrl-C / SIGTERM / a hard time limit clean up and exit. */
export function installGuards(maxMs: number): void {
  const bail = (why: string, code: number): void => {
    process.stderr.write(`\nbench: ${why}; stopping every process it started…\n`);
    void cleanupAll().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => bail('interrupted', 130));
  process.once('SIGTERM', () => bail('terminated', 143));
  setTimeout(() => bail(`time limit of ${Math.round(maxMs / 1000)} s reached`, 2), maxMs).unref();
  // Last resort if the event loop dies: synchronous kill by pid.
  process.on('exit', killRemaining);
}
