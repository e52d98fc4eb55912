import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, httpConfig, ROOT, waitForGone } from '../helpers/baton.ts';
import { describeCounts, expectAllAnswered, startLoad } from '../helpers/load.ts';
import { get } from '../helpers/ports.ts';

const GUNICORN = '/usr/bin/gunicorn';
const hasGunicorn = fs.existsSync(GUNICORN);
const fixtures = path.join(ROOT, 'test/fixtures');

/** Every process a test saw (gunicorn arbiters and their workers), killed by pid if one survives. */
const seen = new Set<number>();

afterEach(async () => {
  await cleanupAll();
  for (const pid of await waitForGone([...seen], 5_000)) process.kill(pid, 'SIGKILL');
  seen.clear();
});

function children(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** True when `pid` has a descriptor on the socket whose inode link (`socket:[N]`) is `link`. */
function holdsSocket(pid: number, link: string): boolean {
  return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === link;
    } catch {
      return false;
    }
  });
}

function notifySocket(baton: BatonProcess, generation: number): string {
  return path.join(baton.dir, 'run', 'notify', `test-${generation}.sock`);
}

describe('any-language children: sd_notify and probes without the SDK', () => {
  it('readiness notify: READY=1 makes a blocking-accept Python server ready, STATUS shows in status, the socket is per generation', async () => {
    const baton = new BatonProcess(httpConfig(['python3', path.join(fixtures, 'notify_server.py')], { readiness: 'notify' }));
    await baton.active(1);
    expect(await baton.workerState(1, 'ready')).toMatchObject({ via: 'notify' });
    const port = await baton.port();
    const { pid } = (await baton.status()).generations[0] as { pid: number };
    expect((await get({ port })).body).toBe(`pid ${pid} generation 1\n`);

    const json = JSON.parse((await baton.cli('status', '--json')).stdout) as { generations: { generation: number; status?: string }[] };
    expect(json.generations).toEqual([expect.objectContaining({ generation: 1, state: 'active', status: `serving as pid ${pid}` })]);
    expect((await baton.cli('status')).stdout).toContain(`serving as pid ${pid}`);
    const first = fs.statSync(notifySocket(baton, 1));
    expect(first.isSocket()).toBe(true);
    expect(first.mode & 0o777).toBe(0o600);

    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    await baton.workerState(1, 'exited');
    expect(fs.existsSync(notifySocket(baton, 1))).toBe(false);
    expect(fs.existsSync(notifySocket(baton, 2))).toBe(true);

    expect((await baton.cli('stop')).exitCode).toBe(0);
    expect((await baton.exited).exitCode).toBe(0);
    expect(fs.readdirSync(path.join(baton.dir, 'run', 'notify'))).toEqual([]);
  });

  it('readiness tcp waits until the new generation itself accepts, also while the old one accepts on the same socket', async () => {
    // The server sleeps before its accept loop: a bare connect would succeed at once on the held socket.
    const baton = new BatonProcess(
      httpConfig(['python3', path.join(fixtures, 'notify_server.py')], { readiness: 'tcp', env: { NOTIFY_SERVER_DELAY: '1.5' } }),
    );
    await baton.active(1);
    const ready1 = await baton.workerState(1, 'ready');
    expect(ready1).toMatchObject({ via: 'tcp' });
    expect(ready1.readyMs).toBeGreaterThanOrEqual(1500);
    const port = await baton.port();
    expect((await get({ port })).body).toMatch(/^pid \d+ generation 1\n$/);

    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    const ready2 = await baton.workerState(2, 'ready');
    expect(ready2.readyMs).toBeGreaterThanOrEqual(1500);
  });

  it.skipIf(!hasGunicorn)(`gunicorn --workers 2 with readiness notify: 5 reloads under load, no failed request, one socket (needs ${GUNICORN})`, async () => {
    const baton = new BatonProcess(
      httpConfig([GUNICORN, '--workers', '2', '--chdir', fixtures, 'wsgi_app:app'], { readiness: 'notify', 'drain-timeout': '20s' }),
    );
    const heldListeners = async () => (await baton.status()).listeners;
    await baton.active(1);
    const port = await baton.port();
    const listeners = await heldListeners();
    const held = listeners[0] as { fd: number; address: string };
    const socketLink = fs.readlinkSync(`/proc/${baton.pid}/fd/${held.fd}`);

    /** The arbiter of generation `n` once both its workers run; records every pid for cleanup. */
    const arbiterOf = async (n: number): Promise<number> => {
      const status = await baton.status();
      const arbiter = (status.generations.find((g) => g.generation === n) as { pid: number }).pid;
      seen.add(arbiter);
      await expect.poll(() => children(arbiter).length, { timeout: 15_000 }).toBe(2);
      for (const worker of children(arbiter)) seen.add(worker);
      expect(holdsSocket(arbiter, socketLink), `arbiter ${arbiter} holds the supervisor's listening socket`).toBe(true);
      return arbiter;
    };
    /** Requests until generation `n` answers; it must be through the arbiter Baton started. */
    const answeredBy = async (n: number): Promise<string> => {
      let body = '';
      await expect.poll(async () => (body = (await get({ port })).body), { timeout: 15_000 }).toMatch(new RegExp(`generation ${n} `));
      return body;
    };

    const arbiters = [await arbiterOf(1)];
    expect(await answeredBy(1)).toMatch(new RegExp(`^arbiter ${arbiters[0]} generation 1 worker \\d+\\n$`));
    expect(await baton.workerState(1, 'ready')).toMatchObject({ via: 'notify' });

    const load = startLoad({ port }, { keepAlive: 4, newConnection: 4 });
    await load.progress(5);
    for (let n = 2; n <= 6; n++) {
      const reply = await baton.reload();
      expect(reply.body, JSON.stringify(reply.body)).toMatchObject({ ok: true, generation: n });
      const arbiter = await arbiterOf(n);
      expect(arbiters).not.toContain(arbiter);
      arbiters.push(arbiter);
      expect(await answeredBy(n)).toMatch(new RegExp(`^arbiter ${arbiter} generation ${n} `));
      await load.progress(3);
    }
    const counts = await load.stop();
    console.log(`gunicorn under Baton: 5 reloads, ${describeCounts(counts)}`);
    expectAllAnswered(counts);
    const answering = new Set(counts.bodies.map((b) => Number(b.split(' ')[1])));
    for (const arbiter of arbiters.slice(1)) expect(answering, `arbiter ${arbiter} answered the load`).toContain(arbiter);

    // One socket throughout: the same descriptor and address, never rebound.
    expect(await heldListeners()).toEqual(listeners);
    expect(fs.readlinkSync(`/proc/${baton.pid}/fd/${held.fd}`)).toBe(socketLink);

    expect((await baton.cli('stop')).exitCode).toBe(0);
    expect((await baton.exited).exitCode).toBe(0);
    const survivors = await waitForGone([...seen], 10_000);
    expect(survivors, `gunicorn processes left: ${survivors.join(', ')}`).toEqual([]);
  });
});
