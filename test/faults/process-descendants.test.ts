import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { alive, BatonProcess, cleanupAll, httpConfig, NODE_FLAGS, ROOT, waitForGone } from '../helpers/baton.ts';
import { freePort, get } from '../helpers/ports.ts';

// Issue #11 item 2: what a generation starts ends with it, whatever it did to get away
// (a session of its own, the listening socket inherited, SIGTERM ignored).

const tracked = new Set<number>();
afterEach(async () => {
  await cleanupAll();
  for (const pid of tracked) if (alive(pid)) process.kill(pid, 'SIGKILL');
  tracked.clear();
});

function program(dir: string): string[] {
  return [process.execPath, ...NODE_FLAGS, path.join(ROOT, 'test/fixtures/spawns-descendants.js'), path.join(dir, 'descendants')];
}

function config(port: number) {
  return (dir: string) =>
    httpConfig(program(dir), {
      listeners: [{ name: 'http', address: `127.0.0.1:${port}` }],
      env: { DESCENDANTS_FILE: path.join(dir, 'descendants') },
      'drain-timeout': '3s',
    });
}

/** The pids the generations' programs reported starting, once `count` have been reported. */
async function descendants(baton: BatonProcess, count: number): Promise<number[]> {
  const file = path.join(baton.dir, 'descendants');
  let pids: number[] = [];
  await expect
    .poll(() => {
      pids = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
      for (const p of pids) tracked.add(p);
      return pids.length;
    }, { timeout: 10_000 })
    .toBeGreaterThanOrEqual(count);
  return pids;
}

function parentOfPid(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('a generation\'s descendants', () => {
  it('end with baton stop, so the next baton run binds the same port', async () => {
    const port = await freePort();
    const baton = new BatonProcess(config(port));
    await baton.active(1);
    const pids = await descendants(baton, 2);
    expect(pids.every(alive)).toBe(true);

    const stop = await baton.cli('stop');
    expect(stop.exitCode, String(stop.stderr)).toBe(0);
    expect(await baton.exited).toMatchObject({ exitCode: 0 });
    expect(await waitForGone(pids, 2_000)).toEqual([]);

    const next = new BatonProcess(config(port));
    await next.active(1);
    // The new generation's own holder accepts on the same socket too, so either may answer: what
    // matters is that nothing of the first run does.
    const answer = (await get({ port })).body;
    expect(answer).toMatch(/^(plain|holder) pid \d+/);
    expect(pids).not.toContain(Number(/pid (\d+)/.exec(answer)?.[1]));
  }, 60_000);

  it('end with a SIGKILLed supervisor', async () => {
    const port = await freePort();
    const baton = new BatonProcess(config(port));
    await baton.active(1);
    const pids = await descendants(baton, 2);
    baton.proc.kill('SIGKILL');
    await baton.exited;
    expect(await waitForGone([...pids, ...baton.childPids], 2_000)).toEqual([]);
  }, 60_000);

  it('end with a generation that crashes: the restarted generation alone answers', async () => {
    const port = await freePort();
    const baton = new BatonProcess(config(port));
    await baton.active(1);
    const [holder, sleeper] = await descendants(baton, 2);
    const first = (await baton.status()).generations[0]!;
    process.kill(first.pid, 'SIGKILL');

    await baton.active(2);
    expect(await waitForGone([holder!, sleeper!], 3_000)).toEqual([]);
    // Generation 2 starts a holder of its own; nothing of generation 1 answers any more.
    const bodies = await Promise.all(Array.from({ length: 20 }, () => get({ port }).then((r) => r.body)));
    for (const gone of [first.pid, holder!]) expect(bodies.filter((b) => b.endsWith(` pid ${gone}\n`))).toEqual([]);
  }, 60_000);

  it('one that escaped (its reaper was killed outright) is named by baton status as holding the listener', async () => {
    const port = await freePort();
    const baton = new BatonProcess(config(port));
    await baton.active(1);
    const [holder] = await descendants(baton, 2);
    const first = (await baton.status()).generations[0]!;
    // The generation's reaper is the supervisor's child; its death cannot be caught.
    const reaper = parentOfPid(first.pid);
    expect(reaper).not.toBe(baton.pid);
    process.kill(reaper, 'SIGKILL');
    await baton.active(2);

    await expect
      .poll(async () => (await baton.status()).listeners[0]?.strays?.map((s) => s.pid), { timeout: 5_000 })
      .toContain(holder);
    const asked = Date.now();
    await controlRequest(baton.socketPath, 'GET', '/status', 2_000);
    expect(Date.now() - asked).toBeLessThan(2_000);
    const text = await baton.cli('status');
    expect(String(text.stdout)).toMatch(new RegExp(`stray.*pid ${holder}`));

    // It outlives the supervisor too; the next one says who keeps the port.
    expect((await baton.cli('stop')).exitCode).toBe(0);
    await baton.exited;
    const next = new BatonProcess(config(port));
    const exit = await next.exited;
    expect(exit.exitCode).not.toBe(0);
    expect(next.stderr.join('') + JSON.stringify(next.lines)).toMatch(new RegExp(`EADDRINUSE.*held by pid ${holder} `));
  }, 60_000);
});
