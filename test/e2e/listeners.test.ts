import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';
import { freePort, get } from '../helpers/ports.ts';

afterEach(cleanupAll);

async function reloadUnderLoad(
  baton: BatonProcess,
  target: { port?: number; socketPath?: string },
  reloads: number,
) {
  const load = startLoad(target, { keepAlive: 2, newConnection: 2 });
  await load.progress(3);
  for (let i = 0; i < reloads; i++) {
    const reply = await baton.reload();
    expect(reply.body.ok, JSON.stringify(reply.body)).toBe(true);
    await load.progress(2);
  }
  const counts = await load.stop();
  expect(counts.refused + counts.reset + counts.other + counts.non200, describeCounts(counts)).toBe(0);
  return counts;
}

describe('listeners', () => {
  it('a Unix socket listener with a mode is handed over across reloads and removed at stop', async () => {
    const baton = new BatonProcess((dir) =>
      httpConfig(fixture('http-app.ts'), { listeners: [{ name: 'http', address: `unix:${path.join(dir, 'app.sock')}`, mode: '0600' }] }),
    );
    const socketPath = path.join(baton.dir, 'app.sock');
    await baton.active(1);
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    const inode = fs.statSync(socketPath).ino;
    const counts = await reloadUnderLoad(baton, { socketPath }, 5);
    expect(counts.bodies.some((b) => b.startsWith('generation 6 '))).toBe(true);
    // The same socket file throughout: never unlinked and bound again.
    expect(fs.statSync(socketPath).ino).toBe(inode);
    expect((await baton.cli('stop')).exitCode).toBe(0);
    expect((await baton.exited).exitCode).toBe(0);
    expect(fs.existsSync(socketPath)).toBe(false);
  });

  it('an address a generation asks for at run time comes over SCM_RIGHTS and survives reloads', async () => {
    const extra = await freePort();
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { env: { EXTRA_LISTEN: `127.0.0.1:${extra}` } }));
    await baton.active(1);
    expect((await get({ port: extra })).body).toMatch(/^generation 1 /);
    await reloadUnderLoad(baton, { port: extra }, 5);
    expect((await baton.status()).listeners.map((l) => l.address)).toContain(`127.0.0.1:${extra}`);
  });

  it('refuses a run-time bind beyond loopback unless configured, and the reload says why', async () => {
    const good = httpConfig(fixture('http-app.ts'), { 'ready-timeout': '5s' });
    const baton = new BatonProcess(good);
    await baton.active(1);
    baton.writeConfig({ ...good, env: { EXTRA_LISTEN: `0.0.0.0:${await freePort()}` } });
    const reply = await baton.reload();
    expect(reply.body.ok).toBe(false);
    expect(reply.body.error?.message).toContain("runtime-listeners is 'loopback'");
    expect((await baton.status()).active).toBe(1);
  });

  it('an unmodified app calling listen(port) gets the held socket through the preload', async () => {
    const port = await freePort();
    const register = path.resolve(import.meta.dirname, '../../child/register.ts');
    const command = [process.execPath, '--disable-warning=ExperimentalWarning', '--import', register, ...fixture('preload-app.js').slice(2)];
    const baton = new BatonProcess(
      httpConfig(command, { listeners: [{ name: 'http', address: `127.0.0.1:${port}` }], env: { APP_PORT: String(port) } }),
    );
    await baton.active(1);
    const ready = await baton.workerState(1, 'ready');
    expect(ready.via).toBe('sdk');
    const counts = await reloadUnderLoad(baton, { port }, 5);
    expect(new Set(counts.bodies).size).toBeGreaterThanOrEqual(5);
  });

  it('a program that knows nothing of Baton is ready once it accepts, with LISTEN_PID its own pid', async () => {
    // preload: off, or Baton's preload would make this node program speak the protocol.
    const baton = new BatonProcess(httpConfig(fixture('plain-server.js'), { preload: 'off' }));
    await baton.active(1);
    const ready = await baton.workerState(1, 'ready');
    expect(ready.via).toBe('accepting');
    const port = await baton.port();
    await reloadUnderLoad(baton, { port }, 5);
  });

  it('with readiness http:/PATH, waits until the program also answers 2xx there', async () => {
    const baton = new BatonProcess(httpConfig(fixture('plain-server.js'), { preload: 'off', readiness: 'http:/healthz', env: { HEALTHZ_503_MS: '600' } }));
    await baton.active(1);
    const ready = await baton.workerState(1, 'ready');
    expect(ready.via).toBe('accepting+http');
    expect(ready.readyMs).toBeGreaterThanOrEqual(600);
  });

  const hasIpv6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === '::1'));
  it.skipIf(!hasIpv6Loopback)('an IPv6 listener works like any other', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { listeners: [{ name: 'http', address: '[::1]:0' }] }));
    await baton.active(1);
    const address = (await baton.status()).listeners[0]?.address ?? '';
    expect(address).toMatch(/^\[::1\]:\d+$/);
    const port = Number(address.slice(address.lastIndexOf(':') + 1));
    const load = startLoad({ host: '::1', port }, { keepAlive: 1, newConnection: 1 });
    await load.progress(2);
    expect((await baton.reload()).body.ok).toBe(true);
    await load.progress(2);
    const counts = await load.stop();
    expect(counts.ok, describeCounts(counts)).toBe(counts.requests);
  });

  it('a listener removed from the config closes once the generations using it have exited', async () => {
    const [kept, dropped] = [await freePort(), await freePort()];
    const both = httpConfig(fixture('http-app.ts'), {
      listeners: [
        { name: 'http', address: `127.0.0.1:${kept}` },
        { name: 'old', address: `127.0.0.1:${dropped}` },
      ],
    });
    const baton = new BatonProcess(both);
    await baton.active(1);
    baton.writeConfig({ ...both, listeners: [{ name: 'http', address: `127.0.0.1:${kept}` }] });
    expect((await baton.reload()).body.ok).toBe(true);
    await baton.workerState(1, 'exited');
    expect((await baton.status()).listeners.map((l) => l.name)).toEqual(['http']);
    await expect(get({ port: dropped })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect((await get({ port: kept })).body).toMatch(/^generation 2 /);
  });
});
