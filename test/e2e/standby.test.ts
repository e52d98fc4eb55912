/**
 * `standby: true` (issue #19): each worker slot's next Node process is booted while the current
 * one serves, and a reload or a crash restart wakes it instead of starting Node. These run real
 * supervisors and check what a standby may and may not become: it is taken only by a spawn of
 * the same command, environment and sockets, it serves as the generation it was woken for, and
 * nothing of it outlives the supervisor.
 */
import fs from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReloadTiming } from '../../shared/reload-timing.ts';
import type { StatusSnapshot } from '../../supervisor/core/supervisor-types.ts';
import { alive, BatonProcess, cleanupAll, fixture, httpConfig, waitForGone } from '../helpers/baton.ts';

afterEach(cleanupAll);

type Standby = NonNullable<StatusSnapshot['standbys']>[number];

/** Polls the status until every worker slot in `workers` has a waiting standby; returns them by slot. */
async function waitingStandbys(b: BatonProcess, workers = [0], timeoutMs = 20_000): Promise<Standby[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = (await b.status()).standbys ?? [];
    const ready = workers.map((w) => s.find((x) => x.worker === w && x.waiting));
    if (ready.every(Boolean)) return ready as Standby[];
    if (Date.now() > deadline) throw new Error(`no waiting standby for workers ${workers.join(',')} within ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function get(to: number | { socketPath: string; path: string }): Promise<string> {
  const where = typeof to === 'number' ? { host: '127.0.0.1', port: to, path: '/' } : to;
  return new Promise((resolve, reject) => {
    http.get({ ...where, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

function environ(pid: number): Record<string, string> {
  const raw = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return Object.fromEntries(raw.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

describe('standby processes', () => {
  it('a reload wakes the waiting standby, which serves as the new generation', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts'), { standby: true }));
    await b.active(1);
    const [standby] = await waitingStandbys(b);
    // Booted without the generation's own variables: it cannot have acted as any generation yet.
    expect(environ(standby!.pid).BATON_GENERATION).toBeUndefined();
    const reply = await b.reload();
    expect(reply.body).toMatchObject({ ok: true, generation: 2, pid: standby!.pid });
    const timing = (reply.body as { timing?: ReloadTiming }).timing;
    expect(timing?.child?.woken).toBeGreaterThanOrEqual(timing!.spawning);
    expect(timing?.child?.listenCalled).toBeGreaterThanOrEqual(timing!.child!.woken!);
    // Its environment, LISTEN_PID among it, arrived on waking: the SDK found the inherited socket.
    expect(await get(await b.port())).toContain(`generation 2 pid ${standby!.pid}`);
    // The stats modules were loaded before the wake, the segment opened after it: the count lands in the supervisor's.
    expect(/^app_requests_total (\S+)$/m.exec(await get({ socketPath: b.socketPath, path: '/metrics' }))?.[1]).toBe('1');
    // And the slot's next standby follows.
    const [next] = await waitingStandbys(b);
    expect(next!.pid).not.toBe(standby!.pid);
  });

  it('a changed environment discards the standby: the reload starts cold, the next standby has the new variable', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts'), { standby: true }));
    await b.active(1);
    const [stale] = await waitingStandbys(b);
    b.writeConfig(httpConfig(fixture('http-app.ts'), { standby: true, env: { RELEASE: 'two' } }));
    const reply = await b.reload();
    expect(reply.body.ok).toBe(true);
    expect((reply.body as { pid?: number }).pid).not.toBe(stale!.pid);
    expect((reply.body as { timing?: ReloadTiming }).timing?.child?.woken).toBeUndefined();
    expect(await waitForGone([stale!.pid], 5_000)).toEqual([]);
    const [fresh] = await waitingStandbys(b);
    expect(environ(fresh!.pid).RELEASE).toBe('two');
  });

  it('a killed standby is replaced by a cold start, and a crashed generation is restarted from a standby', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts'), { standby: true }));
    const first = await b.active(1);
    const [killed] = await waitingStandbys(b);
    process.kill(killed!.pid, 'SIGKILL');
    expect(await waitForGone([killed!.pid], 5_000)).toEqual([]);
    const reply = await b.reload();
    expect(reply.body).toMatchObject({ ok: true });
    expect((reply.body as { pid?: number }).pid).not.toBe(killed!.pid);

    const [spare] = await waitingStandbys(b);
    const active = (await b.status()).generations.find((g) => g.state === 'active')!;
    expect(active.pid).not.toBe(first.pid);
    process.kill(active.pid, 'SIGKILL');
    // A generation of one worker that crashed is started again (a new generation): from the standby.
    const restarted = await b.waitForEvent('generation-active', (e) => e.why === 'restart');
    expect(restarted.pid).toBe(spare!.pid);
    expect(await get(await b.port())).toContain(`pid ${spare!.pid}`);
  });

  it('one standby per worker slot; stop leaves no process behind', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts'), { standby: true, workers: 2 }));
    await b.active(1);
    const standbys = await waitingStandbys(b, [0, 1]);
    expect(new Set(standbys.map((s) => s.pid)).size).toBe(2);
    const reply = await b.reload();
    expect(reply.body.ok).toBe(true);
    const gen2 = (await b.status()).generations.find((g) => g.generation === 2)!;
    expect(new Set(gen2.workers?.map((w) => w.pid))).toEqual(new Set(standbys.map((s) => s.pid)));
    const next = await waitingStandbys(b, [0, 1]);
    const stopped = await b.cli('stop');
    expect(stopped.exitCode).toBe(0);
    await b.exited;
    expect(await waitForGone([...next.map((s) => s.pid), ...standbys.map((s) => s.pid)], 5_000)).toEqual([]);
    for (const s of next) expect(alive(s.pid)).toBe(false);
  });

  it('a standby dies with a supervisor that is SIGKILLed', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts'), { standby: true }));
    await b.active(1);
    const [standby] = await waitingStandbys(b);
    b.proc.kill('SIGKILL');
    await b.exited;
    // Its reaper reads end of file on the supervisor's channel and kills what it started.
    expect(await waitForGone([standby!.pid], 5_000)).toEqual([]);
  });
});
