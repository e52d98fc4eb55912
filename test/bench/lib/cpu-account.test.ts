/**
 * bench/lib/cpu-account.ts with real processes: a "supervisor" process with a child that burns
 * CPU, the child's CPU split at its (declared) ready CPU into boot and serving, the supervisor's
 * own counted apart, and a child that exits mid-phase still counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CpuAccount } from '../../../bench/lib/cpu-account.ts';
import { alive, cpuMsOf } from '../../../bench/lib/procs.ts';
import { monotonicMs } from '../../../shared/reload-timing.ts';

const procs: ChildProcess[] = [];
/** The parents' children: a SIGKILLed parent cannot kill them itself. */
const grandchildren: number[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  for (const pid of grandchildren.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A parent process that starts one child per `scripts` entry and prints their pids, one a line. */
function parentOf(scripts: string[]): Promise<{ parent: number; children: number[] }> {
  const code = `
    const { spawn } = require('node:child_process');
    const kids = ${JSON.stringify(scripts)}.map((s) => spawn(process.execPath, ['-e', s], { stdio: 'ignore' }));
    for (const k of kids) console.log(k.pid);
    process.on('SIGTERM', () => { for (const k of kids) k.kill('SIGKILL'); process.exit(0); });
    setInterval(() => {}, 1000);`;
  const p = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  return new Promise((resolve) => {
    let out = '';
    p.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const pids = out.split('\n').filter(Boolean).map(Number);
      if (pids.length === scripts.length) {
        grandchildren.push(...pids);
        resolve({ parent: p.pid!, children: pids });
      }
    });
  });
}

/** Burns `ms` of CPU (not of wall time: the machine may be busy), then runs `then`. */
const burn = (ms: number, then: string): string => `const c = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }; const end = c() + ${ms}; while (c() < end); ${then}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` (polled every 20 ms), for at most 20 s. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await sleep(20);
}

describe('CpuAccount', () => {
  it('splits a generation process’s CPU at its ready CPU into boot and serving, the supervisor’s apart', async () => {
    // Starts idle, so the first mark sees it at (nearly) no CPU; then burns 600 ms.
    const { parent, children } = await parentOf([`setTimeout(() => { ${burn(600, 'setInterval(() => {}, 1000)')} }, 300)`]);
    const gen = children[0]!;
    let ready: { cpuMs: number; at: number } | undefined;
    const acct = new CpuAccount({ supervisorPid: () => parent, ready: (pid) => (pid === gen ? ready : undefined) });
    acct.start();
    await sleep(150);
    acct.mark('a');
    const burnt = (): boolean => cpuMsOf(gen) >= 600;
    await until(burnt);
    await sleep(150);
    acct.mark('b');
    expect(burnt()).toBe(true);
    acct.stop();
    // Declared ready after 250 ms of CPU: that much is boot, the rest serving.
    ready = { cpuMs: 250, at: monotonicMs() };
    const p = acct.phase('a', 'b')!;
    const seconds = p.durationMs / 1000;
    expect(p.processes).toBe(1);
    expect(p.perSec.boot * seconds).toBeGreaterThan(200);
    expect(p.perSec.boot * seconds).toBeLessThanOrEqual(260);
    expect(p.perSec.serving * seconds).toBeGreaterThan(250);
    expect(p.perSec.supervisor * seconds).toBeLessThan(100); // the parent only waits
    // Not ready at all: every bit of it is boot.
    ready = undefined;
    const q = acct.phase('a', 'b')!;
    expect(q.perSec.serving).toBe(0);
    expect(q.perSec.boot * seconds).toBeGreaterThan(450);
    expect(acct.phase('b', 'a')).toBeUndefined();
  });

  it('counts a process that starts and exits between two marks, up to its last sample', async () => {
    const { parent, children } = await parentOf([`setTimeout(() => { ${burn(400, 'process.exit(0)')} }, 200)`]);
    const acct = new CpuAccount({ supervisorPid: () => parent, ready: () => ({ cpuMs: 0, at: 0 }) });
    acct.start();
    acct.mark('a');
    await until(() => !alive(children[0]!));
    await sleep(150);
    acct.mark('b');
    acct.stop();
    const p = acct.phase('a', 'b')!;
    expect(p.processes).toBe(1);
    // Sampled every 100 ms: at most the last interval's CPU is lost.
    expect((p.perSec.serving * p.durationMs) / 1000).toBeGreaterThan(250);
  });
});
