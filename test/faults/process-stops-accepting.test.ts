import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../supervisor/config/config.ts';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import type { StatusSnapshot } from '../../supervisor/core/supervisor.ts';
import { BatonProcess, cleanupAll, fixture, httpConfig, ROOT, waitForGone } from '../helpers/baton.ts';
import { get } from '../helpers/ports.ts';

// Issue #11 item 7: a generation that stops accepting on a listener it accepted on is replaced
// like a crash after `accept-grace`, and the log says why.

afterEach(cleanupAll);

async function status(baton: BatonProcess): Promise<StatusSnapshot> {
  const asked = Date.now();
  const s = (await controlRequest(baton.socketPath, 'GET', '/status', 2_000)).body as StatusSnapshot;
  expect(Date.now() - asked).toBeLessThan(2_000);
  return s;
}

describe('a generation that stops accepting', () => {
  it('is replaced after accept-grace, telling it with a stopped-accepting event', async () => {
    const baton = new BatonProcess(httpConfig(fixture('stops-accepting.js'), { 'accept-grace': '1s' }));
    await baton.active(1);
    const port = await baton.port();
    const first = (await status(baton)).generations[0]!;
    const closed = Date.now();
    expect((await get({ port }, '/close')).body).toBe(`plain pid ${first.pid}\n`);

    const why = await baton.waitForEvent('stopped-accepting', undefined, 10_000);
    expect(why).toMatchObject({ generation: 1, listener: 'http', acceptGraceMs: 1000 });
    expect(Date.now() - closed).toBeGreaterThanOrEqual(1000);
    await baton.active(2);
    const second = (await status(baton)).generations.find((g) => g.generation === 2)!;
    expect((await get({ port })).body).toBe(`plain pid ${second.pid}\n`);
    // The one that stopped accepting was drained out, not left running.
    expect(await waitForGone([first.pid], 10_000)).toEqual([]);
    const stop = await baton.cli('stop');
    expect(stop.exitCode).toBe(0);
    expect(await waitForGone([second.pid], 10_000)).toEqual([]);
  }, 60_000);

  it('is not replaced while it drains on purpose (a reload)', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { 'accept-grace': '300ms', 'drain-timeout': '5s' }));
    await baton.active(1);
    const port = await baton.port();
    // Generation 1 drains for as long as this request lasts, well past the grace.
    const slow = get({ port }, '/slow?ms=2000');
    await expect.poll(async () => (await status(baton)).generations[0]?.connections).toBe(1);
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    expect((await slow).body).toMatch(/^generation 1 /);
    await baton.workerState(1, 'exited');
    expect(baton.events.filter((e) => e.type === 'stopped-accepting')).toEqual([]);
    expect((await status(baton)).active).toBe(2);
  }, 60_000);

  it('is not judged when its accepting cannot be observed (blocking accept(), no epoll)', async () => {
    const server = path.join(ROOT, 'test/fixtures/notify_server.py');
    const baton = new BatonProcess(httpConfig(['python3', server], { readiness: 'notify', 'accept-grace': '200ms' }));
    await baton.active(1);
    const port = await baton.port();
    // Ten times the grace, answering all along.
    const until = Date.now() + 2_000;
    while (Date.now() < until) {
      expect((await get({ port })).status).toBe(200);
      expect((await status(baton)).active).toBe(1);
    }
    expect(baton.events.filter((e) => e.type === 'stopped-accepting')).toEqual([]);
  }, 60_000);

  it('accept-grace is validated: a bad value names the key', () => {
    expect(() => loadConfig(undefined, { command: ['true'], 'accept-grace': 'soon' })).toThrow(/accept-grace/);
    expect(loadConfig(undefined, { command: ['true'] }).acceptGrace).toBe(5_000);
  });
});
