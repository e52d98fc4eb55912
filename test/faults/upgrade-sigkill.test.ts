import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import type { StatusSnapshot } from '../../supervisor/core/supervisor.ts';
import { alive, BatonProcess, cleanupAll, fixture, httpConfig, waitForGone, type LogLine } from '../helpers/baton.ts';
import http from 'node:http';
import { get } from '../helpers/ports.ts';

// Issue #11 item 4: a SIGKILL of either supervisor at any step of `baton upgrade` leaves exactly
// one supervisor, which owns the control socket and drains on SIGTERM.

const stopped = new Set<number>();
afterEach(async () => {
  for (const pid of stopped) if (alive(pid)) process.kill(pid, 'SIGCONT');
  stopped.clear();
  await cleanupAll();
});

interface Upgrading {
  baton: BatonProcess;
  port: number;
  readyDir: string;
  /** Generation 1's pid, under the first supervisor. */
  old: number;
  successor: () => Promise<number>;
  /** Lets generation `n` say ready. */
  release(n: number): void;
}

async function upgrading(env: Record<string, string> = {}): Promise<Upgrading> {
  let readyDir = '';
  const baton = new BatonProcess((dir) => {
    readyDir = path.join(dir, 'ready');
    fs.mkdirSync(readyDir);
    return httpConfig(fixture('ready-when-told.ts'), { env: { READY_DIR: readyDir, ...env }, 'ready-timeout': '60s', 'drain-timeout': '20s' });
  });
  const release = (n: number): void => fs.writeFileSync(path.join(readyDir, String(n)), '');
  release(1);
  await baton.active(1);
  const port = await baton.port();
  const old = (await baton.status()).generations[0]!.pid;
  // The old supervisor names its successor as it spawns it; the successor runs once it logs (it has no control socket yet).
  const successor = async (): Promise<number> => {
    const pid = (await baton.waitForEvent('upgrade-started')).successor;
    await baton.waitForLog((l) => l.pid === pid);
    return pid;
  };
  return { baton, port, readyDir, old, successor, release };
}

/**
 * The log record of event `type` from supervisor `pid`. Only for a supervisor that does not hold
 * the control socket at that moment (a successor before the hand-over, a predecessor after it):
 * nobody can subscribe to its events then, and its log, on the same stdout, is its only word.
 */
function logged(pid: number, type: string, match: (l: LogLine) => boolean = () => true): (l: LogLine) => boolean {
  return (l) => l.pid === pid && l.event === type && match(l);
}

/**
 * Exactly one supervisor, `survivor`, serves: generation `serving` answers, status answers
 * within 2 s from `survivor`, `dead`'s generations are gone; then SIGTERM drains (not kills)
 * and nothing is left: no process, no control socket, no stats segment.
 */
async function expectSoleSupervisor(u: Upgrading, survivor: number, dead: number, serving: number): Promise<void> {
  const { baton, port } = u;
  // Every status answer comes within 2 s, from the survivor, until it names `serving` active.
  const status = async (): Promise<StatusSnapshot> => {
    const asked = Date.now();
    const body = (await controlRequest(baton.socketPath, 'GET', '/status', 2_000)).body as StatusSnapshot;
    expect(Date.now() - asked).toBeLessThan(2_000);
    expect(body.pid).toBe(survivor);
    return body;
  };
  await expect.poll(async () => (await status()).active, { timeout: 10_000 }).toBe(serving);
  // A generation told to drain may still take a connection before it reads that message.
  await expect.poll(async () => (await get({ port })).body, { timeout: 5_000 }).toMatch(new RegExp(`^generation ${serving} `));
  expect(await waitForGone([dead], 5_000)).toEqual([]);
  const servingPid = (await status()).generations.find((g) => g.generation === serving)!.pid;
  const others = [...baton.childPids].filter((p) => p !== servingPid);

  process.kill(survivor, 'SIGTERM');
  const drained = await baton.waitForEvent('worker-state', (e) => e.supervisor === survivor && e.generation === serving && e.to === 'draining', 10_000);
  expect(drained.reason).toBe('SIGTERM received');
  const exited = await baton.waitForEvent('worker-state', (e) => e.supervisor === survivor && e.generation === serving && e.to === 'exited', 15_000);
  expect(exited).toMatchObject({ signal: null });
  expect(await waitForGone([survivor, servingPid, ...others], 10_000)).toEqual([]);
  expect(fs.existsSync(baton.socketPath)).toBe(false);
  expect(fs.readdirSync(baton.statsDir)).toEqual([]);
}

describe('SIGKILL of the old supervisor during an upgrade', () => {
  it('as soon as the successor runs: the successor takes over the control socket', async () => {
    const u = await upgrading();
    u.release(2);
    const upgrade = u.baton.cli('upgrade');
    const successor = await u.successor();
    u.baton.proc.kill('SIGKILL');
    await upgrade;
    await expectSoleSupervisor(u, successor, u.baton.pid, 2);
  }, 60_000);

  it('while the successor\'s generation starts', async () => {
    const u = await upgrading();
    const upgrade = u.baton.cli('upgrade');
    const successor = await u.successor();
    await u.baton.waitForLog(logged(successor, 'worker-starting'));
    u.baton.proc.kill('SIGKILL');
    await upgrade;
    u.release(2);
    await expectSoleSupervisor(u, successor, u.baton.pid, 2);
  }, 60_000);

  it('once the successor is ready, before it renames its control socket', async () => {
    const u = await upgrading();
    const upgrade = u.baton.cli('upgrade');
    const successor = await u.successor();
    await u.baton.waitForLog(logged(successor, 'worker-starting'));
    // Stopped, the old supervisor cannot answer successor-ready: the successor waits before its rename.
    process.kill(u.baton.pid, 'SIGSTOP');
    stopped.add(u.baton.pid);
    u.release(2);
    await u.baton.waitForLog(logged(successor, 'generation-active', (l) => l.generation === 2));
    u.baton.proc.kill('SIGKILL');
    await upgrade;
    await expectSoleSupervisor(u, successor, u.baton.pid, 2);
  }, 60_000);

  it('after the hand-over, while its generation drains', async () => {
    const u = await upgrading();
    u.release(2);
    const upgrade = await u.baton.cli('upgrade');
    expect(upgrade.exitCode, String(upgrade.stderr)).toBe(0);
    const successor = await u.successor();
    u.baton.proc.kill('SIGKILL');
    await expectSoleSupervisor(u, successor, u.baton.pid, 2);
  }, 60_000);
});

describe('SIGKILL of the successor during an upgrade', () => {
  it('while its generation starts: the old supervisor serves on', async () => {
    const u = await upgrading();
    const upgrade = u.baton.cli('upgrade');
    const successor = await u.successor();
    await u.baton.waitForLog(logged(successor, 'worker-starting'));
    process.kill(successor, 'SIGKILL');
    expect((await upgrade).exitCode).toBe(1);
    await expectSoleSupervisor(u, u.baton.pid, successor, 1);
  }, 60_000);

  it('once it is ready, before it renames its control socket: the old supervisor serves on', async () => {
    const u = await upgrading();
    const upgrade = u.baton.cli('upgrade');
    const successor = await u.successor();
    await u.baton.waitForLog(logged(successor, 'worker-starting'));
    process.kill(u.baton.pid, 'SIGSTOP');
    stopped.add(u.baton.pid);
    u.release(2);
    await u.baton.waitForLog(logged(successor, 'generation-active', (l) => l.generation === 2));
    process.kill(successor, 'SIGKILL');
    await waitForGone([successor], 5_000);
    process.kill(u.baton.pid, 'SIGCONT');
    await upgrade;
    await expectSoleSupervisor(u, u.baton.pid, successor, 1);
  }, 60_000);
  it('after the hand-over, while the old generation drains: the old supervisor takes the service back', async () => {
    // An idle keep-alive connection keeps generation 1 draining until its drain timeout (20 s),
    // when the server does not close it first: Node's 5 s keep-alive timeout did, on a loaded
    // machine, before the successor was killed, and then nothing was left to take back.
    const u = await upgrading({ KEEP_ALIVE_MS: '60000' });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: u.port, agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    expect(first).toMatch(/^generation 1 /);
    u.release(2);
    u.release(3);
    const upgrade = await u.baton.cli('upgrade');
    expect(upgrade.exitCode, String(upgrade.stderr)).toBe(0);
    const successor = await u.successor();
    await u.baton.waitForLog(logged(u.baton.pid, 'worker-state', (l) => l.generation === 1 && l.to === 'draining'));
    process.kill(successor, 'SIGKILL');
    // Once taken back, generation 1 may finish draining: its connection has done its part.
    await u.baton.waitForLog(logged(u.baton.pid, 'taken-back'));
    agent.destroy();
    await expectSoleSupervisor(u, u.baton.pid, successor, 3);
  }, 60_000);
});
