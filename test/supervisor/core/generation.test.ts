import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatAddress, parseAddress } from '../../../shared/address.ts';
import { validateConfig, type Config, type ListenerConfig } from '../../../supervisor/config/config.ts';
import { cgroupCpus, statsWriters, usableCpus } from '../../../supervisor/config/workers.ts';
import { Supervisor } from '../../../supervisor/core/supervisor.ts';
import { SHARED_MAX_IN_FLIGHT, SHARED_MAX_KEYS } from '../../../shared/shared-value.ts';
import { FakeOs, flush, silentLog, type FakeChild } from '../os/fake-os.ts';

function listener(name: string, address: string, reusePort = false): ListenerConfig {
  const parsed = parseAddress(address);
  return { name, address: parsed, key: formatAddress(parsed), backlog: 511, ...(reusePort ? { reusePort } : {}) };
}

function config(overrides: Partial<Config> = {}): Config {
  return {
    name: 'shop',
    command: ['node', 'server.js'],
    cwd: '/srv/shop',
    env: {},
    listeners: [listener('http', '127.0.0.1:0', true), listener('admin', 'unix:/run/shop/admin.sock')],
    readyTimeout: 5000,
    drainTimeout: 30_000,
    shutdownTimeout: 5000,
    readiness: { mode: 'sdk' },
    drainSignal: 'SIGTERM',
    restart: { maxFailures: 3, window: 60_000, backoffInitial: 100, backoffMax: 1000 },
    runtimeListeners: 'loopback',
    logLevel: 'info',
    stats: { dir: '/dev/shm', maxBytes: 64 * 1024 * 1024, maxNameLength: 1024, capacities: {} },
    workers: 3,
    rollout: { mode: 'all-at-once', maxSurge: 1 },
    ...overrides,
  };
}

function setup(initial = config()) {
  const fake = new FakeOs();
  let next = initial;
  const supervisor = new Supervisor(initial, { os: fake, log: silentLog, loadConfig: () => next });
  const fatal: string[] = [];
  supervisor.on('fatal', (err) => fatal.push(err.message));
  return { os: fake, supervisor, fatal, setNext: (c: Config) => (next = c) };
}

async function running(initial = config()) {
  const s = setup(initial);
  s.supervisor.start();
  for (const c of s.os.children) await c.sayReady();
  expect(s.supervisor.status().active).toBe(1);
  return s;
}

const workersOf = (s: Supervisor, generation: number) => s.status().generations.find((g) => g.generation === generation)?.workers ?? [];

describe('a generation of workers', () => {
  it('starts N processes with BATON_WORKER 0..N-1; reuseport gives each slot its own socket on the same port, a Unix listener is shared', () => {
    const { os: fake, supervisor } = setup();
    supervisor.start();
    expect(fake.children).toHaveLength(3);
    expect(fake.children.map((c) => c.spec.env.BATON_WORKER)).toEqual(['0', '1', '2']);
    expect(fake.children.map((c) => c.spec.env.BATON_WORKERS)).toEqual(['3', '3', '3']);
    const tcp = fake.listens.filter((l) => l.address.kind === 'tcp');
    expect(tcp).toHaveLength(3);
    expect(tcp.every((l) => l.reusePort)).toBe(true);
    expect(new Set(tcp.map((l) => formatAddress(l.bound))).size).toBe(1);
    const admin = fake.fdOf('unix:/run/shop/admin.sock');
    expect(fake.children.map((c) => c.spec.listenFds)).toEqual(tcp.map((l) => [l.fd, admin]));
    // Same names in the same order for every worker: the LISTEN_FDS contract does not change.
    expect(new Set(fake.children.map((c) => c.spec.env.LISTEN_FDNAMES))).toEqual(new Set(['http:admin']));
  });

  it('with balance shared every worker gets the same socket', () => {
    const { os: fake, supervisor } = setup(config({ listeners: [listener('http', '127.0.0.1:8080')] }));
    supervisor.start();
    expect(fake.listens).toHaveLength(1);
    expect(new Set(fake.children.map((c) => c.spec.listenFds[0]))).toEqual(new Set([fake.fdOf('127.0.0.1:8080')]));
  });

  it('is active only once every worker is ready', async () => {
    const { os: fake, supervisor } = setup();
    supervisor.start();
    await fake.children[0]?.sayReady();
    await fake.children[2]?.sayReady();
    expect(supervisor.status().active).toBeNull();
    await fake.children[1]?.sayReady();
    expect(supervisor.status().active).toBe(1);
    expect(workersOf(supervisor, 1).map((w) => w.state)).toEqual(['active', 'active', 'active']);
    expect(supervisor.summary()).toMatch(/^generation 1 active \(3\/3 workers\)/);
  });

  it('a reload whose worker 2 fails leaves every worker of the serving generation untouched', async () => {
    const { os: fake, supervisor } = await running();
    const reload = supervisor.reload();
    reload.catch(() => {});
    await fake.children[3]?.sayReady();
    await fake.children[4]?.sayReady();
    fake.children[5]?.exit(1);
    await expect(reload).rejects.toMatchObject({ code: 'ERR_RELOAD_FAILED', message: expect.stringMatching(/generation 2 worker 2 .*exited with code 1/) });
    expect(supervisor.status().active).toBe(1);
    expect(workersOf(supervisor, 1).map((w) => [w.pid, w.state])).toEqual(fake.children.slice(0, 3).map((c) => [c.pid, 'active']));
    expect(supervisor.status().generations.find((g) => g.generation === 2)?.state).toBe('draining');
    for (const c of fake.children.slice(0, 3)) expect(c.signals).toEqual([]);
  });

  it('restarts a dead worker alone in its slot, same generation, with backoff per slot', async () => {
    const { os: fake, supervisor } = await running(config({ restart: { maxFailures: 10, window: 60_000, backoffInitial: 100, backoffMax: 1000 } }));
    fake.children[1]?.exit(null, 'SIGKILL');
    await flush();
    expect(supervisor.status().active).toBe(1);
    expect(fake.children).toHaveLength(3);
    await fake.advance(100);
    expect(fake.children).toHaveLength(4);
    const replacement = fake.children[3]!;
    expect(replacement.spec.env).toMatchObject({ BATON_GENERATION: '1', BATON_WORKER: '1' });
    expect(replacement.spec.listenFds).toEqual(fake.children[1]?.spec.listenFds);
    await replacement.sayReady();
    expect(workersOf(supervisor, 1).map((w) => [w.worker, w.pid, w.state])).toEqual([
      [0, fake.children[0]?.pid, 'active'],
      [1, replacement.pid, 'active'],
      [2, fake.children[2]?.pid, 'active'],
    ]);
    // The same slot failing again waits twice as long; another slot starts from the initial delay.
    replacement.exit(1);
    fake.children[0]?.exit(1);
    await flush();
    await fake.advance(100);
    expect(fake.children.slice(4).map((c) => c.spec.env.BATON_WORKER)).toEqual(['0']);
    await fake.advance(100);
    expect(fake.children.slice(4).map((c) => c.spec.env.BATON_WORKER)).toEqual(['0', '1']);
  });

  it('gives up (ERR_CRASH_LOOP) when the workers of one generation crash max-failures times within the window', async () => {
    const { os: fake, supervisor, fatal } = await running();
    fake.children[0]?.exit(1);
    fake.children[1]?.exit(1);
    await flush();
    expect(fatal).toEqual([]);
    fake.children[2]?.exit(1);
    await flush();
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(/3 worker failures of generation 1 within 1m/);
    void supervisor;
  });

  it('drains every worker of the replaced generation on promotion', async () => {
    const { os: fake, supervisor } = await running();
    const reload = supervisor.reload();
    for (const c of fake.children.slice(3)) await c.sayReady();
    await reload;
    expect(workersOf(supervisor, 1).map((w) => w.state)).toEqual(['draining', 'draining', 'draining']);
    for (const c of fake.children.slice(0, 3)) expect(c.sent.some((m) => m.type === 'drain')).toBe(true);
  });
});

describe('shared values', () => {
  const shares = (c: FakeChild) => c.sent.filter((m) => m.type === 'share');
  const helloReply = async (c: FakeChild) => {
    const seq = c.push({ type: 'hello', pid: c.pid, runtime: 'node test' });
    await flush();
    return c.ackFor(seq);
  };

  it('a value one worker shares reaches every worker of the generation, the sender too, and is acked once every one has it', async () => {
    const { os: fake } = await running();
    const workers = fake.children.slice(0, 3);
    const seq = workers[0]!.push({ type: 'share', key: 'proxy.health_check', value: 'fail' });
    await flush();
    for (const c of workers) expect(shares(c)).toMatchObject([{ key: 'proxy.health_check', value: 'fail' }]);
    expect(workers[0]!.ackFor(seq)).toBeUndefined();
    for (const c of workers) c.push({ type: 'ack', ack: shares(c)[0]!.seq, ok: true });
    await flush();
    expect(workers[0]!.ackFor(seq)).toMatchObject({ ok: true, workers: 3 });
  });

  it('a worker restarted in its slot gets the generation\'s values in its hello; a new generation starts with none', async () => {
    const { os: fake, supervisor } = await running(config({ restart: { maxFailures: 10, window: 60_000, backoffInitial: 100, backoffMax: 1000 } }));
    fake.children[2]!.push({ type: 'share', key: 'proxy.health_check', value: 'fail' });
    fake.children[2]!.push({ type: 'share', key: 'rate', value: 2.5 });
    await flush();
    fake.children[1]!.exit(null, 'SIGKILL');
    await flush();
    await fake.advance(100);
    const replacement = fake.children[3]!;
    expect(replacement.spec.env.BATON_WORKER).toBe('1');
    expect(await helloReply(replacement)).toMatchObject({ ok: true, shared: { 'proxy.health_check': 'fail', rate: 2.5 } });
    replacement.push({ type: 'ready' });
    await flush();
    const reload = supervisor.reload();
    await flush();
    const next = fake.children.slice(4);
    expect(next).toHaveLength(3);
    expect(await helloReply(next[0]!)).toMatchObject({ ok: true, shared: {} });
    for (const c of next) await c.sayReady();
    await reload;
  });

  it('refuses a bad key, a bad value and one key too many with ERR_BAD_REQUEST, telling no worker', async () => {
    const { os: fake } = await running();
    const [a, b] = fake.children as [FakeChild, FakeChild];
    const bad = [
      a.push({ type: 'share', key: 'has space', value: 1 }),
      a.push({ type: 'share', key: 'ok', value: { nested: true } }),
      a.push({ type: 'share', key: 'ok', value: 'x'.repeat(5000) }),
      a.push({ type: 'share', key: 'inf', value: Number.POSITIVE_INFINITY }),
    ];
    await flush();
    for (const seq of bad) expect(a.ackFor(seq)).toMatchObject({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: expect.stringMatching(/^generation 1 worker 0: .*shared/) } });
    expect(shares(b)).toEqual([]);
    for (let i = 0; i < SHARED_MAX_KEYS; i++) {
      a.push({ type: 'share', key: `k${i}`, value: i });
      await flush();
      for (const w of fake.children.slice(0, 3)) w.push({ type: 'ack', ack: shares(w).at(-1)!.seq, ok: true });
      await flush();
    }
    const tooMany = a.push({ type: 'share', key: 'one-more', value: true });
    const again = a.push({ type: 'share', key: 'k0', value: false });
    await flush();
    expect(a.ackFor(tooMany)).toMatchObject({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: expect.stringContaining(`holds ${SHARED_MAX_KEYS} shared values already`) } });
    expect(shares(b).at(-1)).toMatchObject({ key: 'k0', value: false });
    expect(a.ackFor(again)).toBeUndefined(); // an existing key is set again; its ack waits for the workers
  });

  it('refuses a worker more than 32 shares on their way at once; one resolved makes room', async () => {
    const { os: fake } = await running();
    const [a, b, c] = fake.children as [FakeChild, FakeChild, FakeChild];
    const seqs = Array.from({ length: SHARED_MAX_IN_FLIGHT }, (_, i) => a.push({ type: 'share', key: 'n', value: i }));
    const over = a.push({ type: 'share', key: 'n', value: -1 });
    await flush();
    expect(a.ackFor(over)).toMatchObject({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: expect.stringContaining(`${SHARED_MAX_IN_FLIGHT} of its shared values are on their way already`) } });
    expect(shares(b)).toHaveLength(SHARED_MAX_IN_FLIGHT);
    for (const w of [a, b, c]) w.push({ type: 'ack', ack: shares(w)[0]!.seq, ok: true });
    await flush();
    expect(a.ackFor(seqs[0]!)).toMatchObject({ ok: true, workers: 3 });
    const next = a.push({ type: 'share', key: 'n', value: 99 });
    await flush();
    expect(a.ackFor(next)).toBeUndefined();
    expect(shares(b).at(-1)).toMatchObject({ value: 99 });
  });

  it('a worker that does not acknowledge within 5 s is left out of the count; the sharer is answered anyway', async () => {
    const { os: fake } = await running();
    const workers = fake.children.slice(0, 3);
    const seq = workers[1]!.push({ type: 'share', key: 'drain', value: true });
    await flush();
    for (const c of workers.slice(0, 2)) c.push({ type: 'ack', ack: shares(c)[0]!.seq, ok: true });
    await flush();
    expect(workers[1]!.ackFor(seq)).toBeUndefined();
    await fake.advance(5000);
    expect(workers[1]!.ackFor(seq)).toMatchObject({ ok: true, workers: 2 });
  });
});

describe('rollout: rolling', () => {
  const rolling = () => config({ workers: 2, rollout: { mode: 'rolling', maxSurge: 1 } });
  const envOf = (c: { spec: { env: Record<string, string> } }) => `${c.spec.env.BATON_GENERATION}/${c.spec.env.BATON_WORKER}`;

  it('replaces slot by slot: the next slot starts only once the old worker of the previous one has exited', async () => {
    const { os: fake, supervisor } = await running(rolling());
    const reload = supervisor.reload();
    await flush();
    expect(fake.children.map(envOf)).toEqual(['1/0', '1/1', '2/0']);
    await fake.children[2]?.sayReady();
    expect(fake.children[0]?.sent.some((m) => m.type === 'drain')).toBe(true);
    expect(fake.children).toHaveLength(3);
    fake.children[0]?.exit(0);
    await flush();
    expect(fake.children.map(envOf)).toEqual(['1/0', '1/1', '2/0', '2/1']);
    await fake.children[3]?.sayReady();
    await expect(reload).resolves.toMatchObject({ generation: 2 });
    expect(workersOf(supervisor, 2).map((w) => w.state)).toEqual(['active', 'active']);
    expect(fake.children[1]?.sent.some((m) => m.type === 'drain')).toBe(true);
  });

  it('a failed slot rolls the replaced slots back: the old generation starts there again, then the new worker drains', async () => {
    const { os: fake, supervisor } = await running(rolling());
    const reload = supervisor.reload();
    reload.catch(() => {});
    await flush();
    await fake.children[2]?.sayReady();
    fake.children[0]?.exit(0);
    await flush();
    fake.children[3]?.exit(1);
    await flush();
    expect(fake.children.map(envOf)).toEqual(['1/0', '1/1', '2/0', '2/1', '1/0']);
    expect(fake.children[2]?.sent.some((m) => m.type === 'drain')).toBe(false);
    await fake.children[4]?.sayReady();
    expect(fake.children[2]?.sent.some((m) => m.type === 'drain')).toBe(true);
    fake.children[2]?.exit(0);
    await expect(reload).rejects.toMatchObject({ code: 'ERR_RELOAD_FAILED', message: expect.stringMatching(/generation 2 worker 1/) });
    expect(supervisor.status().active).toBe(1);
    expect(workersOf(supervisor, 1).map((w) => [w.pid, w.state])).toEqual([
      [fake.children[4]?.pid, 'active'],
      [fake.children[1]?.pid, 'active'],
    ]);
  });
});

describe('workers configuration', () => {
  it('defaults to 1 worker and no reuseport; workers: 2 turns reuseport on for TCP listeners only', () => {
    const one = validateConfig({ command: 'x', listeners: [{ address: '127.0.0.1:80' }] }, 'test', '/srv');
    expect(one.workers).toBeUndefined();
    expect(one.listeners[0]?.reusePort).toBeUndefined();
    const two = validateConfig(
      { command: 'x', workers: 2, listeners: [{ address: '127.0.0.1:80' }, { address: '127.0.0.1:81', balance: 'shared' }, { address: 'unix:/tmp/a.sock' }] },
      'test',
      '/srv',
    );
    expect(two.workers).toBe(2);
    expect(two.listeners.map((l) => l.reusePort ?? false)).toEqual([true, false, false]);
    expect(validateConfig({ command: 'x', workers: '4', balance: 'shared' }, 'cli', '/srv').workers).toBe(4);
  });

  it('workers: auto is the CPUs this process may use, within the cgroup quota', () => {
    expect(validateConfig({ command: 'x', workers: 'auto' }, 'test', '/srv').workers ?? 1).toBe(usableCpus());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpu-max-'));
    const file = path.join(dir, 'cpu.max');
    fs.writeFileSync(file, '150000 100000\n');
    expect(cgroupCpus(file)).toBe(2);
    fs.writeFileSync(file, 'max 100000\n');
    expect(cgroupCpus(file)).toBeUndefined();
    fs.writeFileSync(file, '50000 100000\n');
    expect(usableCpus(file)).toBe(1);
    expect(cgroupCpus(path.join(dir, 'absent'))).toBeUndefined();
    fs.rmSync(dir, { recursive: true });
  });

  it('sizes the stats writer slots for the workers of every generation alive at once (serving, starting, max-draining draining), and says so when stats.writers is too small', () => {
    expect(statsWriters(undefined, 3, 'test')).toEqual({}); // 1 + 3 x 5 = 16, the default
    expect(statsWriters(undefined, 4, 'test')).toEqual({ writers: 21, generations: 20 });
    expect(statsWriters(undefined, 4, 'test', 1)).toEqual({});
    expect(statsWriters(undefined, 8, 'test')).toEqual({ writers: 41, generations: 40 });
    expect(validateConfig({ command: 'x', workers: 4, 'max-draining': 6 }, 'baton.yaml', '/srv').stats.capacities).toMatchObject({ writers: 33 });
    expect(() => validateConfig({ command: 'x', workers: 30 }, 'baton.yaml', '/srv')).toThrow(/30 workers of 5 generations at once \(max-draining 3\) need 151 stats writer slots/);
    expect(() => validateConfig({ command: 'x', workers: 8, stats: { writers: 10 } }, 'baton.yaml', '/srv')).toThrow(
      /stats\.writers: 10 writer slots cannot hold 8 workers of a serving and a starting generation \(at least 17/,
    );
    expect(() => validateConfig({ command: 'x', workers: 0 }, 'baton.yaml', '/srv')).toThrow(/workers/);
  });
});
