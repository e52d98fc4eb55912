import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, execShimPath, socketPair } from '../../shared/native/native.ts';
import { alive, waitForGone } from '../helpers/baton.ts';

// baton-exec --reap, driven directly: what a generation's reaper promises the supervisor.

const tracked = new Set<number>();
afterEach(() => {
  for (const pid of tracked) if (alive(pid)) process.kill(pid, 'SIGKILL');
  tracked.clear();
});

interface Reaped {
  pid: number;
  commandPid: number;
  control: number;
  stdout: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function reap(graceMs: number, command: string[], env: Record<string, string> = {}): Promise<Reaped> {
  const [control, child] = socketPair();
  const proc = spawn(execShimPath, ['--reap', '3', String(graceMs), String(process.pid), ...command], {
    stdio: ['ignore', 'pipe', 'inherit', child],
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  closeFd(child);
  tracked.add(proc.pid as number);
  const stdout: string[] = [];
  proc.stdout?.on('data', (c: Buffer) => stdout.push(...c.toString().split('\n').filter(Boolean)));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const buf = Buffer.alloc(32);
  const n = fs.readSync(control, buf, 0, 32, null);
  const commandPid = Number(buf.toString('utf8', 0, n).trim());
  tracked.add(commandPid);
  return { pid: proc.pid as number, commandPid, control, stdout, exit };
}

describe('baton-exec --reap', () => {
  it('reports the command\'s pid, which is LISTEN_PID, and exits with its code', async () => {
    const r = await reap(1000, ['sh', '-c', 'echo $$ $LISTEN_PID; exit 7'], { LISTEN_FDS: '1' });
    expect(await r.exit).toEqual({ code: 7, signal: null });
    expect(r.stdout).toEqual([`${r.commandPid} ${r.commandPid}`]);
    expect(r.commandPid).not.toBe(r.pid);
    closeFd(r.control);
  });

  it('forwards a signal to the command and dies of the signal that killed it', async () => {
    const r = await reap(1000, ['sleep', '60']);
    process.kill(r.pid, 'SIGTERM');
    expect(await r.exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(await waitForGone([r.commandPid], 2_000)).toEqual([]);
    closeFd(r.control);
  });

  it('ends what the command left behind, SIGKILL after the grace for one that ignores SIGTERM', async () => {
    const r = await reap(500, ['sh', '-c', "setsid sh -c 'trap \"\" TERM; echo $$; exec sleep 60' & sleep 0.3; exit 0"]);
    const started = Date.now();
    expect(await r.exit).toEqual({ code: 0, signal: null });
    const leftover = Number(r.stdout[0]);
    tracked.add(leftover);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(alive(leftover)).toBe(false);
    closeFd(r.control);
  });

  it("kills the whole tree on 'K', and when its control socket closes (the supervisor died)", async () => {
    const k = await reap(10_000, ['sh', '-c', "sh -c 'echo $$; exec sleep 60' & wait"]);
    await expect.poll(() => k.stdout.length).toBe(1);
    fs.writeSync(k.control, 'K');
    expect(await k.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await waitForGone([Number(k.stdout[0])], 2_000)).toEqual([]);
    closeFd(k.control);

    const eof = await reap(10_000, ['sh', '-c', "sh -c 'echo $$; exec sleep 60' & wait"]);
    await expect.poll(() => eof.stdout.length).toBe(1);
    closeFd(eof.control);
    await eof.exit;
    expect(await waitForGone([eof.commandPid, Number(eof.stdout[0])], 2_000)).toEqual([]);
  });
});
