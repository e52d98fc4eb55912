// Signals at awkward moments, on a real supervisor: a burst of SIGHUPs, a SIGHUP while stopping,
// a SIGUSR2 during a reload and a SIGTERM while a reload's generation starts. Each is either
// carried out or refused in the log with its code, and the serving generation keeps serving.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig, waitForGone, type LogLine } from '../helpers/baton.ts';
import { expectAllAnswered, startLoad } from '../helpers/load.ts';

afterEach(cleanupAll);

/** A supervisor of test/fixtures/ready-when-told.ts: generation n says ready once release(n) is called. */
async function told(extra: Record<string, unknown> = {}): Promise<{ baton: BatonProcess; port: number; release(n: number): void }> {
  let readyDir = '';
  const baton = new BatonProcess((dir) => {
    readyDir = path.join(dir, 'ready');
    fs.mkdirSync(readyDir);
    return httpConfig(fixture('ready-when-told.ts'), { env: { READY_DIR: readyDir }, 'ready-timeout': '60s', ...extra });
  });
  const release = (n: number): void => fs.writeFileSync(path.join(readyDir, String(n)), '');
  release(1);
  await baton.active(1);
  return { baton, port: await baton.port(), release };
}

/** The generations the supervisor started, by their worker-starting events. */
function started(baton: BatonProcess): number[] {
  return [...new Set(baton.events.filter((e) => e.type === 'worker-starting').map((e) => (e as { generation: number }).generation))];
}

/** A warning that refused what a signal asked, matched by its error's code (not its wording). */
function refusal(code: string): (l: LogLine) => boolean {
  return (l) => l.level === 40 && (l.err as { code?: string } | undefined)?.code === code;
}

describe('signals at awkward moments', () => {
  it('a burst of SIGHUPs while a reload starts makes that one reload; nothing fails under load', async () => {
    const { baton, port, release } = await told();
    const load = startLoad({ port }, { keepAlive: 2, newConnection: 2 });
    await load.progress(20);
    process.kill(baton.pid, 'SIGHUP');
    await baton.waitForEvent('worker-starting', (e) => e.generation === 2);
    for (let i = 0; i < 20; i++) process.kill(baton.pid, 'SIGHUP');
    // A reload asked over the socket after the burst joins the one starting, as the burst did.
    const asked = baton.reload();
    await load.progress(20);
    release(2);
    expect((await asked).body).toMatchObject({ ok: true, generation: 2 });
    await load.progress(20);
    const counts = await load.stop();
    expectAllAnswered(counts);
    expect(started(baton)).toEqual([1, 2]);
    expect((await baton.status()).generations.find((g) => g.state === 'active')?.generation).toBe(2);
  });

  it('a SIGHUP while stopping is refused in the log; the drain finishes and the exit is 0', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { 'drain-timeout': '20s' }));
    await baton.active(1);
    const port = await baton.port();
    // A request in flight keeps generation 1 draining, so the SIGHUP lands mid-stop.
    const slow = fetch(`http://127.0.0.1:${port}/slow?ms=1500`).then((r) => r.text());
    await expect.poll(async () => (await baton.status()).generations[0]?.connections).toBe(1);
    process.kill(baton.pid, 'SIGTERM');
    await baton.waitForEvent('stopping');
    process.kill(baton.pid, 'SIGHUP');
    await baton.waitForLog(refusal('ERR_SHUTTING_DOWN'));
    expect(await slow).toMatch(/^generation 1 /);
    expect(await baton.exited).toMatchObject({ exitCode: 0 });
    expect(started(baton)).toEqual([1]);
  });

  it('a SIGUSR2 during a reload is refused in the log; the reload completes and no successor starts', async () => {
    const { baton, release } = await told();
    const reloading = baton.reload();
    await baton.waitForEvent('worker-starting', (e) => e.generation === 2);
    process.kill(baton.pid, 'SIGUSR2');
    await baton.waitForLog(refusal('ERR_UPGRADING'));
    release(2);
    expect((await reloading).body).toMatchObject({ ok: true, generation: 2 });
    expect(baton.events.some((e) => e.type === 'upgrade-started')).toBe(false);
    expect((await baton.status()).pid).toBe(baton.pid);
  });

  it('a SIGTERM while a reload starts ends both generations and exits 0, leaving no process', async () => {
    const { baton } = await told({ 'shutdown-timeout': '2s' });
    const reloading = baton.reload().then(
      (r) => r.body.ok,
      () => false, // the socket closed under the request: also not a success
    );
    const starting = await baton.waitForEvent('worker-starting', (e) => e.generation === 2);
    const pids = [...baton.childPids];
    expect(pids).toContain(starting.pid);
    process.kill(baton.pid, 'SIGTERM');
    expect(await baton.exited).toMatchObject({ exitCode: 0 });
    expect(await reloading).toBe(false);
    expect(await waitForGone(pids, 5_000)).toEqual([]);
  });
});
