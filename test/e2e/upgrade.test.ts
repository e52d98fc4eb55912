import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig, waitForGone } from '../helpers/baton.ts';
import { describeCounts, expectAllAnswered, startLoad } from '../helpers/load.ts';
import { get } from '../helpers/ports.ts';
import { field, NotifyReceiver, stopReceivers } from '../helpers/notify-receiver.ts';

afterEach(async () => {
  await cleanupAll();
  stopReceivers();
});

/** The kernel socket behind a process's descriptor, e.g. `socket:[123456]`. */
function socketOf(pid: number, fd: number): string {
  return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
}

/** `baton stats --json`: read from the segment itself, whichever supervisor owns it now. */
async function segment(baton: BatonProcess): Promise<{ stats: { name: string; value?: number }[]; generations: { generation: number; pid: number }[] }> {
  const r = await baton.cli('stats', '--json', '--name', 'test');
  expect(r.exitCode, String(r.stderr)).toBe(0);
  return JSON.parse(String(r.stdout)) as never;
}

describe('baton upgrade', () => {
  it('replaces the supervisor twice under load: no failed request, same socket, stats carry on, systemd told the new MAINPID', async () => {
    const systemd = new NotifyReceiver();
    await systemd.listening();
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')), [], { NOTIFY_SOCKET: systemd.socketPath });
    await baton.active(1);
    const port = await baton.port();
    const first = await baton.status();
    const socket = socketOf(baton.pid, first.listeners[0]!.fd);
    const load = startLoad({ port }, { keepAlive: 4, newConnection: 4 });
    await load.progress(5);

    const pids = [baton.pid];
    for (const generation of [2, 3]) {
      const previous = pids.at(-1)!;
      const result = await baton.cli('upgrade');
      expect(result.exitCode, String(result.stderr)).toBe(0);
      const pid = Number(/supervisor pid (\d+) serves with generation (\d+)/.exec(String(result.stdout))?.[1]);
      expect(String(result.stdout)).toContain(`serves with generation ${generation}`);
      expect(pid).not.toBe(previous);
      pids.push(pid);
      // Its own end, after the hand-over: it holds no control socket then, so its log is its only word.
      await baton.waitForLog((l) => l.pid === previous && l.event === 'stopped' && l.handedOver === true);
      // The old supervisor names its successor as the service's main process, and the successor says it is ready.
      await expect.poll(() => systemd.seen.some((n) => n.message === `MAINPID=${pid}`)).toBe(true);
      expect(field(await systemd.next({ READY: '1', MAINPID: String(pid) }), 'STATUS')).toMatch(new RegExp(`^generation ${generation} active`));
      expect(await waitForGone([previous], 15_000)).toEqual([]);
      const status = await baton.status();
      expect(status).toMatchObject({ pid, active: generation });
      // The very socket the first supervisor bound, not a rebind.
      expect(socketOf(pid, status.listeners[0]!.fd)).toBe(socket);
      await load.progress(5);
    }

    const counts = await load.stop();
    console.log(`upgrade under load: 2 supervisor upgrades, ${describeCounts(counts)}`);
    expectAllAnswered(counts);
    expect(new Set(counts.bodies.map((b) => b.split(' ')[1])).size).toBe(3);

    // Counted by three supervisors in one segment.
    const { stats } = await segment(baton);
    expect(Number(stats.find((s) => s.name === 'baton.generations_started')?.value)).toBe(3);

    const stop = await baton.cli('stop');
    expect(stop.exitCode, String(stop.stderr)).toBe(0);
    expect(await waitForGone([...pids, ...baton.childPids], 20_000)).toEqual([]);
  }, 120_000);

  it('SIGUSR2 upgrades the supervisor, as nginx does', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const port = await baton.port();
    process.kill(baton.pid, 'SIGUSR2');
    const done = await baton.waitForEvent('upgraded');
    expect(done).toMatchObject({ predecessor: baton.pid });
    expect(done.supervisor).not.toBe(baton.pid);
    expect(await baton.status()).toMatchObject({ pid: done.supervisor, active: 2 });
    // Generation 1 stops accepting once its drain message arrives, just after the hand-over.
    await expect.poll(async () => (await get({ port })).body, { timeout: 5_000 }).toMatch(/^generation 2 /);
  }, 60_000);

  it('a successor killed outright mid-upgrade: the old supervisor serves on and frees the stats writer it held', async () => {
    const config = httpConfig(fixture('http-app.ts'));
    const baton = new BatonProcess(config);
    await baton.active(1);
    const port = await baton.port();
    // The successor's generation never becomes ready, so the successor is caught mid-upgrade.
    baton.writeConfig({ ...config, command: fixture('never-ready.ts'), 'ready-timeout': '60s' });
    const upgrade = baton.cli('upgrade');
    const { successor } = await baton.waitForEvent('upgrade-started');
    const table = async (): Promise<number[]> => (await segment(baton)).generations.map((g) => g.generation).sort();
    await expect.poll(table, { timeout: 10_000 }).toEqual([1, 2]);
    // The successor's generation, from the segment's table (the successor never gets the control socket).
    const child = (await segment(baton)).generations.find((g) => g.generation === 2)!.pid;
    process.kill(successor, 'SIGKILL');

    const result = await upgrade;
    expect(result.exitCode).toBe(1);
    expect(String(result.stderr)).toMatch(/exited \(SIGKILL\) before its first generation was active/);
    await expect.poll(table, { timeout: 10_000 }).toEqual([1]);
    // The successor's generation (which accepted too, never ready) died with it.
    expect(await waitForGone([child], 10_000)).toEqual([]);
    expect((await get({ port })).body).toMatch(/^generation 1 /);
  }, 60_000);

  it('keeps the old supervisor serving when the new one cannot start its generation', async () => {
    const config = httpConfig(fixture('http-app.ts'));
    const baton = new BatonProcess(config);
    await baton.active(1);
    const port = await baton.port();
    const load = startLoad({ port }, { keepAlive: 2, newConnection: 2 });
    await load.progress(3);

    baton.writeConfig({ ...config, command: fixture('exits-at-start.ts') });
    const result = await baton.cli('upgrade');
    expect(result.exitCode).toBe(1);
    expect(String(result.stderr)).toMatch(/new supervisor \(pid \d+\) exited \(code 1\) before its first generation was active/);
    const status = await baton.status();
    expect(status).toMatchObject({ pid: baton.pid, active: 1 });
    await load.progress(3);

    // Nothing of the attempt lingers: reloads work again once the release is fixed.
    baton.writeConfig(config);
    const reload = await baton.reload();
    expect(reload.body).toMatchObject({ ok: true });
    await load.progress(3);
    const counts = await load.stop();
    expect(counts.ok, describeCounts(counts)).toBe(counts.requests);
    expect(baton.successors.size).toBe(1);
    expect(await waitForGone([...baton.successors], 10_000)).toEqual([]);
  }, 90_000);
});
