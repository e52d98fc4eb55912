import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig, waitForGone } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';
import { field, NotifyReceiver, stopReceivers } from '../helpers/notify-receiver.ts';
import { freePort, get } from '../helpers/ports.ts';

const ACTIVATE = '/usr/bin/systemd-socket-activate';
const hasActivate = fs.existsSync(ACTIVATE);
const dirs: string[] = [];

afterEach(async () => {
  await cleanupAll();
  stopReceivers();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-systemd-'));
  dirs.push(dir);
  return dir;
}

/** systemd-socket-activate says when it listens (on stderr): only then may a client connect. */
async function activatorListening(baton: BatonProcess, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((baton.stderr.join('').match(/Listening on /g) ?? []).length < count) {
    if (Date.now() > deadline) throw new Error(`systemd-socket-activate did not listen: ${baton.stderr.join('')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const monotonicUsec = (): bigint => process.hrtime.bigint() / 1000n;

describe('systemd notify', () => {
  it('READY with MAINPID and STATUS, FDSTORE of its listeners, WATCHDOG, RELOADING/READY on SIGHUP (a failed reload too), STOPPING', async () => {
    const receiver = new NotifyReceiver();
    await receiver.listening();
    const config = httpConfig(fixture('http-app.ts'));
    const baton = new BatonProcess(config, [], { NOTIFY_SOCKET: receiver.socketPath, WATCHDOG_USEC: '200000', FDSTORE: '8' });
    const port = await baton.active(1).then(() => baton.port());

    const ready = await receiver.next({ READY: '1' });
    expect(field(ready, 'MAINPID')).toBe(String(baton.pid));
    expect(field(ready, 'STATUS')).toMatch(/^generation 1 active \(pid \d+\), 0 draining, \d+ open connections$/);
    const stored = await receiver.next({ FDSTORE: '1' });
    expect(stored.message).toBe('FDSTORE=1\nFDNAME=baton.http\nFDPOLL=0');
    expect(stored.ports).toEqual([port]);
    // Every 100 ms for a 200 ms watchdog: three pings arrive well within a second.
    const firstPing = await receiver.next({ WATCHDOG: '1' });
    const secondPing = await receiver.next({ WATCHDOG: '1' }, firstPing.index);
    await receiver.next({ WATCHDOG: '1' }, secondPing.index);

    // No generation inherits systemd's socket: each gets a NOTIFY_SOCKET of Baton's own.
    const generation = (await baton.status()).generations[0]!;
    const environ = fs.readFileSync(`/proc/${generation.pid}/environ`, 'utf8').split('\0');
    expect(environ).not.toContain(`NOTIFY_SOCKET=${receiver.socketPath}`);
    expect(environ.some((e) => e.startsWith('WATCHDOG_USEC=') || e.startsWith('FDSTORE='))).toBe(false);

    const before = monotonicUsec();
    const mark = receiver.seen.length - 1;
    process.kill(baton.pid, 'SIGHUP');
    const reloading = await receiver.next({ RELOADING: '1' }, mark);
    const stamp = BigInt(field(reloading, 'MONOTONIC_USEC') ?? '0');
    expect(stamp >= before && stamp <= monotonicUsec()).toBe(true);
    const reloaded = await receiver.next({ READY: '1' }, reloading.index);
    expect(field(reloaded, 'STATUS')).toMatch(/^generation 2 active/);

    baton.writeConfig({ ...config, command: fixture('exits-at-start.ts') });
    const failedMark = receiver.seen.length - 1;
    process.kill(baton.pid, 'SIGHUP');
    const failing = await receiver.next({ RELOADING: '1' }, failedMark);
    const afterFailure = await receiver.next({ READY: '1' }, failing.index);
    // READY ends the reload for systemd; the status says the old generation still serves.
    expect(field(afterFailure, 'STATUS')).toMatch(/^generation 2 active/);
    expect((await get({ port })).status).toBe(200);

    process.kill(baton.pid, 'SIGTERM');
    await receiver.next({ STOPPING: '1' });
    await baton.waitForEvent('stopped', (e) => !e.handedOver);
  }, 60_000);
});

describe.skipIf(!hasActivate)('socket activation (systemd-socket-activate)', () => {
  it('serves from the first request on the unit’s sockets, matched by name, across reloads under load; never closes or unlinks them', async () => {
    const port = await freePort();
    const dir = tempDir();
    const unixPath = path.join(dir, 'extra.sock');
    const env = ['BATON_RUNTIME_DIR', 'BATON_STATS_DIR', 'PATH'];
    const baton = new BatonProcess(
      httpConfig(fixture('http-app.ts')),
      [],
      {},
      [ACTIVATE, '-l', `127.0.0.1:${port}`, '-l', unixPath, '--fdname=http:extra', ...env.map((e) => `-E${e}`)],
    );
    await activatorListening(baton, 2);
    // systemd-socket-activate launches Baton on the first connection; it waits in the backlog meanwhile.
    const first = await get({ port });
    expect(first.body).toMatch(/^generation 1 /);
    const status = await baton.status();
    expect(status.listeners).toEqual([
      { name: 'http', address: `127.0.0.1:${port}`, fd: 3, from: 'systemd' },
      { name: 'extra', address: `unix:${unixPath}`, fd: 4, from: 'systemd' },
    ]);

    const load = startLoad({ port }, { keepAlive: 4, newConnection: 4 });
    await load.progress(3);
    for (let i = 0; i < 5; i++) {
      expect((await baton.reload()).body).toMatchObject({ ok: true, generation: i + 2 });
      await load.progress(3);
    }
    const counts = await load.stop();
    console.log(`socket activation: 5 reloads, ${describeCounts(counts)}`);
    expect(counts.ok, describeCounts(counts)).toBe(counts.requests);
    expect((await baton.status()).listeners.map((l) => l.fd)).toEqual([3, 4]);

    expect((await baton.cli('stop')).exitCode).toBe(0);
    await baton.waitForEvent('stopped', (e) => !e.handedOver);
    expect(await waitForGone([baton.pid], 10_000)).toEqual([]);
    // A socket unit's Unix socket is systemd's to remove, not Baton's.
    expect(fs.existsSync(unixPath)).toBe(true);
  }, 90_000);

  it('takes back its own listeners from the descriptor store by name after a restart', async () => {
    const port = await freePort();
    const env = ['BATON_RUNTIME_DIR', 'BATON_STATS_DIR', 'PATH'];
    // What systemd passes a restarted service from FDSTORE=1 pushes: Baton's prefixed names.
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')), [], {}, [ACTIVATE, '-l', `127.0.0.1:${port}`, '--fdname=baton.http', ...env.map((e) => `-E${e}`)]);
    await activatorListening(baton, 1);
    expect((await get({ port })).status).toBe(200);
    const status = await baton.status();
    // The config asks for port 0; the listener named http is the stored socket instead of a new bind.
    expect(status.listeners).toEqual([{ name: 'http', address: `127.0.0.1:${port}`, fd: 3, from: 'fd-store' }]);
  }, 60_000);
});
