import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatAddress, parseAddress } from '../../../shared/address.ts';
import { BatonError } from '../../../shared/errors.ts';
import type { Config, ListenerConfig } from '../../../supervisor/config/config.ts';
import type { ServiceManager } from '../../../supervisor/systemd/service-manager.ts';
import { Supervisor } from '../../../supervisor/core/supervisor.ts';
import { FakeOs, flush, observe, silentLog } from '../os/fake-os.ts';

function listener(name: string, address: string): ListenerConfig {
  const parsed = parseAddress(address);
  return { name, address: parsed, key: formatAddress(parsed), backlog: 511 };
}

function config(overrides: Partial<Config> = {}): Config {
  return {
    name: 'shop',
    command: ['node', 'server.js', '--port', '8080'],
    cwd: '/srv/shop',
    env: { NODE_ENV: 'production' },
    listeners: [listener('http', '127.0.0.1:8080'), listener('admin', 'unix:/run/shop/admin.sock')],
    readyTimeout: 5000,
    drainTimeout: 30_000,
    shutdownTimeout: 5000,
    readiness: { mode: 'sdk' },
    drainSignal: 'SIGTERM',
    restart: { maxFailures: 5, window: 60_000, backoffInitial: 100, backoffMax: 1000 },
    runtimeListeners: 'loopback',
    logLevel: 'info',
    stats: { dir: '/dev/shm', maxBytes: 64 * 1024 * 1024, maxNameLength: 1024, capacities: {} },
    ...overrides,
  };
}

/** A supervisor on a FakeOs; `next` is what the config loader returns (or throws) on reload. */
function setup(initial = config()) {
  const os = new FakeOs();
  const loader = { next: initial as Config | Error, calls: 0 };
  const supervisor = new Supervisor(initial, {
    os,
    log: silentLog,
    loadConfig: () => {
      loader.calls++;
      if (loader.next instanceof Error) throw loader.next;
      return loader.next;
    },
  });
  const events: string[] = [];
  supervisor.on('fatal', (err) => events.push(`fatal ${err.code}: ${err.message}`));
  supervisor.on('stopped', () => events.push('stopped'));
  return { os, loader, supervisor, events };
}

/** Started, with generation 1 active. */
async function running(initial = config()) {
  const s = setup(initial);
  s.supervisor.start();
  await s.os.child.sayReady();
  expect(s.supervisor.status().active).toBe(1);
  return s;
}

const states = (s: Supervisor) => s.status().generations.map((g) => `${g.generation}:${g.state}`);

afterEach(() => vi.unstubAllEnvs());

describe('Supervisor start', () => {
  it('launches generation 1 with the held sockets and the LISTEN_* and BATON_* environment', () => {
    vi.stubEnv('BATON_FD_CHANNEL', '9');
    vi.stubEnv('LISTEN_FDS', '4');
    const { os, supervisor } = setup();
    supervisor.start();
    expect(os.children).toHaveLength(1);
    const { spec } = os.child;
    const http = os.fdOf('127.0.0.1:8080');
    const admin = os.fdOf('unix:/run/shop/admin.sock');
    expect(spec).toMatchObject({ command: 'node', args: ['server.js', '--port', '8080'], cwd: '/srv/shop', listenFds: [http, admin] });
    expect(spec.env).toMatchObject({
      NODE_ENV: 'production',
      LISTEN_FDS: '2',
      LISTEN_FDNAMES: 'http:admin',
      BATON_GENERATION: '1',
      BATON_INSTANCE: 'shop',
      BATON_PROTOCOL: '1',
    });
    expect(JSON.parse(spec.env.BATON_LISTENERS ?? '')).toEqual([
      { fd: 3, name: 'http', address: '127.0.0.1:8080' },
      { fd: 4, name: 'admin', address: 'unix:/run/shop/admin.sock' },
    ]);
    // The supervisor's own channel is not passed on.
    expect(spec.env.BATON_FD_CHANNEL).toBeUndefined();
  });

  it('makes generation 1 active once it is ready', async () => {
    const { os, supervisor } = setup();
    supervisor.start();
    expect(supervisor.status().active).toBeNull();
    expect(states(supervisor)).toEqual(['1:starting']);
    await os.child.sayReady();
    expect(supervisor.status().active).toBe(1);
    expect(states(supervisor)).toEqual(['1:active']);
  });

  it('gives each generation its own notify socket in the runtime directory, and readiness notify takes READY=1', async () => {
    vi.stubEnv('BATON_RUNTIME_DIR', '/run/baton-test');
    const { os, supervisor } = setup(config({ readiness: { mode: 'notify' } }));
    supervisor.start();
    expect(os.child.spec.notifySocket).toBe('/run/baton-test/notify/shop-1.sock');
    os.child.notify('READY=1');
    await os.advance(20);
    expect(supervisor.status().active).toBe(1);
  });

  it("readiness tcp probes through the first TCP listener, with the generation's pid", async () => {
    const { os, supervisor } = setup(config({ readiness: { mode: 'tcp' }, listeners: [listener('admin', 'unix:/run/shop/admin.sock'), listener('http', '127.0.0.1:8080')] }));
    supervisor.start();
    os.tcpProbeResult = true;
    await os.advance(20);
    expect(os.tcpProbes).toEqual([{ address: parseAddress('127.0.0.1:8080'), pid: os.child.pid }]);
    expect(supervisor.status().active).toBe(1);
  });

  it('throws ERR_LISTENER when a listener cannot be bound, and launches nothing', () => {
    const { os, supervisor } = setup();
    os.busy.add('127.0.0.1:8080');
    expect(() => supervisor.start()).toThrow(expect.objectContaining({ code: 'ERR_LISTENER' }));
    expect(os.children).toHaveLength(0);
  });
});

describe('Supervisor reload', () => {
  it('launches generation 2 on the same sockets and drains 1 once 2 is ready', async () => {
    const { os, supervisor } = await running();
    const [one] = os.children;
    const reload = observe(supervisor.reload());
    await flush();
    expect(os.children).toHaveLength(2);
    expect(os.child.spec.env.BATON_GENERATION).toBe('2');
    expect(os.child.spec.listenFds).toEqual(one?.spec.listenFds);
    expect(os.listens).toHaveLength(2);
    expect(one?.sent.filter((m) => m.type === 'drain')).toEqual([]);
    await os.child.sayReady();
    expect(reload).toMatchObject({ state: 'resolved', value: { generation: 2, pid: os.child.pid } });
    expect(one?.sent.at(-1)).toMatchObject({ type: 'drain' });
    expect(states(supervisor)).toEqual(['1:draining', '2:active']);
  });

  it('publishes the start, the reload and the drained exit as typed events, in order', async () => {
    const { os, supervisor } = await running();
    const [one] = os.children;
    const reload = observe(supervisor.reload());
    await flush();
    await os.child.sayReady();
    expect(reload.state).toBe('resolved');
    one?.exit(0);
    await flush();
    const seen = supervisor.events.after(0).map(({ seq: _, time: __, ...e }) => e);
    const [p1, p2] = [one?.pid, os.child.pid];
    expect(seen.filter((e) => e.type !== 'listening' && e.type !== 'generation-state')).toEqual([
      { type: 'worker-starting', generation: 1, worker: 0, pid: p1 },
      { type: 'worker-state', generation: 1, worker: 0, pid: p1, from: 'starting', to: 'ready' },
      { type: 'worker-state', generation: 1, worker: 0, pid: p1, from: 'ready', to: 'active' },
      { type: 'generation-active', generation: 1, pid: p1, readyMs: expect.any(Number), why: 'start', draining: [] },
      { type: 'worker-starting', generation: 2, worker: 0, pid: p2 },
      { type: 'worker-state', generation: 2, worker: 0, pid: p2, from: 'starting', to: 'ready' },
      { type: 'worker-state', generation: 2, worker: 0, pid: p2, from: 'ready', to: 'active' },
      { type: 'worker-state', generation: 1, worker: 0, pid: p1, from: 'active', to: 'draining' },
      { type: 'generation-active', generation: 2, pid: p2, readyMs: expect.any(Number), why: 'reload', draining: [1] },
      { type: 'worker-state', generation: 1, worker: 0, pid: p1, from: 'draining', to: 'exited' },
    ]);
    expect(seen.filter((e) => e.type === 'listening').map((e) => e.type === 'listening' && e.listener)).toEqual(['http', 'admin']);
    expect(seen.filter((e) => e.type === 'generation-state' && e.generation === 1).map((e) => e.type === 'generation-state' && e.to)).toEqual(['ready', 'active', 'draining', 'exited']);
  });

  it('publishes a failed reload with the cause\'s code and leaves the serving generation', async () => {
    const { supervisor, loader } = await running();
    loader.next = new BatonError('ERR_CONFIG', 'baton.yaml:3: bad');
    await expect(supervisor.reload()).rejects.toMatchObject({ code: 'ERR_RELOAD_FAILED' });
    expect(supervisor.events.after(0).filter((e) => e.type === 'reload-failed')).toEqual([
      expect.objectContaining({ type: 'reload-failed', code: 'ERR_CONFIG', message: expect.stringMatching(/^reload failed: baton\.yaml:3: bad\n\(generation 1 keeps serving\)$/) }),
    ]);
  });

  it('warmup: the new generation accepts beside the old one for the warm-up, then the old one drains', async () => {
    const { os, supervisor } = await running(config({ warmup: 1_000 }));
    const [one] = os.children;
    const reload = observe(supervisor.reload());
    await flush();
    await os.child.sayReady();
    await os.advance(999);
    // Both serve: the old one was told nothing, the new one is ready, the reload not done.
    expect(one?.sent.filter((m) => m.type === 'drain')).toEqual([]);
    expect(states(supervisor)).toEqual(['1:active', '2:ready']);
    expect(reload.state).toBe('pending');
    expect(supervisor.events.after(0).filter((e) => e.type === 'warming')).toEqual([expect.objectContaining({ generation: 2, beside: [1], warmupMs: 1_000 })]);
    await os.advance(1);
    await flush();
    expect(reload).toMatchObject({ state: 'resolved', value: { generation: 2 } });
    expect(one?.sent.at(-1)).toMatchObject({ type: 'drain' });
    expect(states(supervisor)).toEqual(['1:draining', '2:active']);
  });

  it('warmup: a reload asked for during the warm-up shares its outcome; no third generation starts', async () => {
    const { os, supervisor } = await running(config({ warmup: 1_000 }));
    const first = supervisor.reload();
    await flush();
    await os.child.sayReady();
    await os.advance(500);
    const second = supervisor.reload();
    expect(second).toBe(first);
    await os.advance(500);
    await expect(first).resolves.toMatchObject({ generation: 2 });
    expect(os.children).toHaveLength(2);
  });

  it('warmup: a new generation that exits during its warm-up fails the reload and leaves the old one serving, told nothing', async () => {
    const { os, supervisor } = await running(config({ warmup: 1_000 }));
    const [one] = os.children;
    const reload = supervisor.reload();
    await flush();
    await os.child.sayReady();
    await os.advance(300);
    os.child.exit(1);
    await expect(reload).rejects.toMatchObject({ code: 'ERR_RELOAD_FAILED', message: expect.stringMatching(/generation 2 .*exited with code 1 during its warm-up/) });
    expect(one?.sent.filter((m) => m.type === 'drain')).toEqual([]);
    expect(supervisor.status().active).toBe(1);
    expect(states(supervisor)).toEqual(['1:active', '2:exited']);
  });

  it('rollback with no canary window relaunches the release before the serving one, then refuses to go further back', async () => {
    const { os, supervisor, loader } = await running();
    loader.next = config({ command: ['node', 'v2.js'] });
    const reload = supervisor.reload();
    await flush();
    await os.child.sayReady();
    await reload;
    const back = supervisor.rollback();
    await flush();
    expect(os.children).toHaveLength(3);
    expect([os.child.spec.command, ...os.child.spec.args]).toEqual(['node', 'server.js', '--port', '8080']);
    await os.child.sayReady();
    expect(await back).toMatchObject({ how: 'relaunched', generation: 3, release: 1, replaced: 2 });
    expect(states(supervisor)).toEqual(['1:draining', '2:draining', '3:active']);
    expect(supervisor.events.after(0).filter((e) => e.type === 'rolled-back')).toEqual([expect.objectContaining({ generation: 3, release: 1, replaced: 2 })]);
    // The config in force is the rolled-back-to one: a crash restart runs it, not v2.
    expect(loader.calls).toBe(1);
    await expect(supervisor.rollback()).rejects.toMatchObject({ code: 'ERR_NO_PREVIOUS', message: 'nothing to roll back to: generation 3 runs the first release this supervisor started' });
  });

  it('rollback with nothing before the first release is ERR_NO_PREVIOUS and starts nothing', async () => {
    const { os, supervisor } = await running();
    await expect(supervisor.rollback()).rejects.toMatchObject({ code: 'ERR_NO_PREVIOUS' });
    expect(os.children).toHaveLength(1);
  });

  it('coalesces reloads asked for while one is starting: one generation, one outcome', async () => {
    const { os, supervisor, loader } = await running();
    const first = supervisor.reload();
    const second = supervisor.reload();
    await flush();
    expect(os.children).toHaveLength(2);
    expect(loader.calls).toBe(1);
    await os.child.sayReady();
    const [a, b] = await Promise.all([first, second]);
    expect(a).toEqual(b);
    expect(a.generation).toBe(2);
    // Once settled, the next reload is a new one.
    void supervisor.reload();
    await flush();
    expect(os.children).toHaveLength(3);
  });

  it('rolls back a reload whose generation exits early: old one keeps serving', async () => {
    const { os, supervisor } = await running();
    const reload = observe(supervisor.reload());
    await flush();
    os.child.stderr = ['SyntaxError: Unexpected token'];
    os.child.exit(1);
    await flush();
    expect(reload.state).toBe('rejected');
    const err = reload.error as BatonError;
    expect(err.code).toBe('ERR_RELOAD_FAILED');
    expect(err.message).toMatch(/generation 2 .*exited with code 1 before it was ready/);
    expect(err.message).toContain('SyntaxError: Unexpected token');
    expect(err.message).toContain('(generation 1 keeps serving)');
    expect(states(supervisor)).toEqual(['1:active', '2:exited']);
    // No crash restart: generation 1 is still serving.
    await os.advance(120_000);
    expect(os.children).toHaveLength(2);
  });

  it('drains a reload generation that never becomes ready and keeps the old one active', async () => {
    const { os, supervisor } = await running();
    const reload = observe(supervisor.reload());
    await os.advance(5000);
    expect(reload.state).toBe('rejected');
    expect(reload.error).toMatchObject({ code: 'ERR_RELOAD_FAILED', message: expect.stringContaining('did not become ready within 5.0s') });
    expect(states(supervisor)).toEqual(['1:active', '2:draining']);
    expect(os.child.signals).toEqual(['SIGTERM']);
    expect(os.children[0]?.signals).toEqual([]);
  });

  it('a reload whose config loader throws rejects with ERR_RELOAD_FAILED and launches nothing', async () => {
    const { os, supervisor, loader } = await running();
    loader.next = new BatonError('ERR_CONFIG', 'invalid configuration in baton.yaml:\n  ready-timeout: invalid duration');
    await expect(supervisor.reload()).rejects.toMatchObject({
      code: 'ERR_RELOAD_FAILED',
      message: expect.stringMatching(/ready-timeout: invalid duration\n\(generation 1 keeps serving\)$/),
    });
    loader.next = config({ name: 'other' });
    await expect(supervisor.reload()).rejects.toThrow(/name cannot change on reload/);
    expect(os.children).toHaveLength(1);
  });

  it('a generation that becomes ready after a newer one was promoted is drained, not promoted', async () => {
    const { os, supervisor } = setup();
    supervisor.start();
    const reload = supervisor.reload();
    await os.children[1]!.sayReady();
    await expect(reload).resolves.toMatchObject({ generation: 2 });
    await os.children[0]!.sayReady();
    await flush();
    expect(supervisor.status().active).toBe(2);
    expect(states(supervisor)).toEqual(['1:draining', '2:active']);
  });

  it('a change of stats capacities fails a hot reload and launches nothing; a cold reload proceeds', async () => {
    const { os, supervisor, loader } = await running();
    loader.next = config({ stats: { dir: '/dev/shm', maxBytes: 1 << 26, maxNameLength: 1024, capacities: { writers: 8 } } });
    await expect(supervisor.reload()).rejects.toMatchObject({
      code: 'ERR_RELOAD_FAILED',
      cause: expect.objectContaining({ code: 'ERR_STATS_INCOMPATIBLE' }),
      message: expect.stringContaining('use baton reload --cold'),
    });
    expect(os.children).toHaveLength(1);
    const cold = supervisor.reload({ cold: true });
    await os.children[1]!.sayReady();
    await expect(cold).resolves.toMatchObject({ generation: 2 });
    // The new layout is now the running one: a hot reload with it goes through.
    const hot = supervisor.reload();
    await os.children[2]!.sayReady();
    await expect(hot).resolves.toMatchObject({ generation: 3 });
  });

  it('closes a listener removed from the config only after the generations using it exit', async () => {
    const { os, supervisor, loader } = await running();
    const admin = os.fdOf('unix:/run/shop/admin.sock');
    loader.next = config({ listeners: [listener('http', '127.0.0.1:8080')] });
    const reload = supervisor.reload();
    await flush();
    expect(os.child.spec.env.LISTEN_FDNAMES).toBe('http');
    await os.child.sayReady();
    await reload;
    expect(os.closed).toEqual([]);
    os.children[0]?.exit(0);
    expect(os.closed).toEqual([admin]);
    expect(supervisor.status().listeners.map((l) => l.name)).toEqual(['http']);
  });

  it('closes a listener added by a failed reload when its generation exits', async () => {
    const { os, supervisor, loader } = await running();
    loader.next = config({ listeners: [...config().listeners, listener('metrics', '127.0.0.1:9100')] });
    const reload = observe(supervisor.reload());
    await flush();
    const metrics = os.fdOf('127.0.0.1:9100');
    os.child.exit(1);
    await flush();
    expect(reload.state).toBe('rejected');
    expect(os.closed).toEqual([metrics]);
  });

  it('a listener renamed in the config keeps its socket and the next generation sees the new name', async () => {
    const { os, supervisor, loader } = await running();
    loader.next = config({ listeners: [listener('web', '127.0.0.1:8080'), listener('admin', 'unix:/run/shop/admin.sock')] });
    void supervisor.reload().catch(() => {});
    await flush();
    expect(os.listens).toHaveLength(2);
    expect(os.child.spec.env.LISTEN_FDNAMES).toBe('web:admin');
  });
});

/** A service manager that records what it is told, in order. */
function recordingManager(): ServiceManager & { told: string[] } {
  const told: string[] = [];
  return {
    told,
    env: {},
    ready: (status) => told.push(`ready: ${status}`),
    reloading: () => told.push('reloading'),
    stopping: () => told.push('stopping'),
    status: (text) => told.push(`status: ${text}`),
    mainPid: (pid) => told.push(`mainpid ${pid}`),
    storeFds: (sockets) => told.push(`store ${sockets.map((x) => x.name).join(',')}`),
    removeFds: (name) => told.push(`remove ${name}`),
    close: () => told.push('close'),
  };
}

describe('Supervisor and the service manager', () => {
  function managed() {
    const os = new FakeOs();
    const manager = recordingManager();
    const loader = { next: config() };
    const supervisor = new Supervisor(config(), { os, log: silentLog, loadConfig: () => loader.next, serviceManager: manager });
    return { os, manager, loader, supervisor };
  }
  const notStatus = (told: string[]) => told.filter((t) => !t.startsWith('status: '));

  it('ready once the first generation serves; reloading then ready around every reload, failed or not; stopping', async () => {
    const { os, manager, loader, supervisor } = managed();
    supervisor.start();
    await os.child.sayReady();
    const reload = supervisor.reload();
    await flush();
    await os.child.sayReady();
    await reload;
    loader.next = config({ command: ['node', 'broken.js'] });
    const failed = observe(supervisor.reload());
    await flush();
    os.child.exit(1);
    await flush();
    expect(failed.state).toBe('rejected');
    void supervisor.stop();
    expect(notStatus(manager.told)).toEqual([
      'store http,admin',
      'store http,admin',
      `ready: generation 1 active (pid ${os.children[0]!.pid}), 0 draining, 0 open connections`,
      'reloading',
      'store http,admin',
      `ready: generation 2 active (pid ${os.children[1]!.pid}), 1 draining, 0 open connections`,
      'reloading',
      `ready: generation 2 active (pid ${os.children[1]!.pid}), 1 draining, 0 open connections`,
      'stopping',
    ]);
    expect(manager.told).toContain(`status: generation 2 active (pid ${os.children[1]!.pid}), 1 draining, 0 open connections`);
  });

  it('drops a removed listener from the descriptor store when its socket closes', async () => {
    const { os, manager, loader, supervisor } = managed();
    supervisor.start();
    await os.child.sayReady();
    loader.next = config({ listeners: [listener('http', '127.0.0.1:8080')] });
    const reload = supervisor.reload();
    await flush();
    await os.child.sayReady();
    await reload;
    expect(manager.told).not.toContain('remove admin');
    os.children[0]?.exit(0);
    expect(manager.told).toContain('remove admin');
  });

  it('retiring for a successor names its pid as the main process, and never says stopping', async () => {
    const { os, manager, supervisor } = managed();
    supervisor.start();
    await os.child.sayReady();
    const retired = supervisor.retire(4242);
    os.child.exit(0);
    await retired;
    expect(notStatus(manager.told).slice(-2)).toEqual(['mainpid 4242', 'close']);
    expect(manager.told).not.toContain('stopping');
    // The successor holds the same sockets: nothing closed, nothing dropped from the store.
    expect(os.closed).toEqual([]);
  });
});

describe('Supervisor crash restart', () => {
  it('restarts a crashed active generation after backoffInitial, then doubling', async () => {
    const { os, supervisor } = await running();
    os.child.exit(1);
    expect(supervisor.status().active).toBeNull();
    await os.advance(99);
    expect(os.children).toHaveLength(1);
    await os.advance(1);
    expect(os.children).toHaveLength(2);
    os.child.exit(1); // fails before ready
    await flush();
    await os.advance(199);
    expect(os.children).toHaveLength(2);
    await os.advance(1);
    expect(os.children).toHaveLength(3);
    await os.child.sayReady();
    expect(supervisor.status().active).toBe(3);
  });

  it('does not restart during an upgrade, whose successor comes next; restarts if the upgrade fails', async () => {
    const { os, supervisor } = await running();
    expect(supervisor.beginHandOver().nextGeneration).toBe(2);
    os.child.exit(1);
    await os.advance(1000);
    expect(os.children).toHaveLength(1);
    await expect(supervisor.reload()).rejects.toMatchObject({ code: 'ERR_UPGRADING' });
    supervisor.resumeAfterHandOver();
    expect(os.children).toHaveLength(2);
    await os.child.sayReady();
    expect(supervisor.status().active).toBe(2);
  });

  it("gives up with a 'fatal' ERR_CRASH_LOOP after maxFailures within the window", async () => {
    const { os, events } = await running(config({ restart: { maxFailures: 3, window: 60_000, backoffInitial: 100, backoffMax: 1000 } }));
    os.child.exit(1);
    await os.advance(100);
    os.child.exit(1);
    await flush();
    await os.advance(200);
    expect(os.children).toHaveLength(3);
    expect(events).toEqual([]);
    os.child.exit(1);
    await flush();
    expect(events).toEqual([expect.stringMatching(/^fatal ERR_CRASH_LOOP: .*generation 3 .*3 failures within 1m00s: giving up/)]);
    await os.advance(600_000);
    expect(os.children).toHaveLength(3);
  });

  it('forgets failures older than the window', async () => {
    const { os, events } = await running(config({ restart: { maxFailures: 2, window: 1000, backoffInitial: 100, backoffMax: 1000 } }));
    for (let i = 0; i < 3; i++) {
      os.child.exit(1);
      await os.advance(100);
      await os.child.sayReady();
      await os.advance(1000);
    }
    expect(events).toEqual([]);
    expect(os.children).toHaveLength(4);
  });
});

describe('Supervisor stop', () => {
  it("drains every generation, then emits 'stopped' and closes listeners after the last exits", async () => {
    const { os, supervisor, events } = await running();
    const reload = supervisor.reload();
    await flush();
    await os.child.sayReady();
    await reload;
    const [one, two] = os.children;
    const stopped = observe(supervisor.stop());
    expect(two?.sent.at(-1)).toMatchObject({ type: 'drain' });
    expect(states(supervisor)).toEqual(['1:draining', '2:draining']);
    one?.exit(0);
    await flush();
    expect(events).toEqual([]);
    expect(os.closed).toEqual([]);
    two?.exit(0);
    await flush();
    expect(events).toEqual(['stopped']);
    expect(stopped.state).toBe('resolved');
    expect(os.closed.sort()).toEqual(os.listens.map((l) => l.fd).sort());
    expect(supervisor.status()).toMatchObject({ stopping: true, active: null, listeners: [] });
  });

  it('refuses reload while stopping with ERR_SHUTTING_DOWN', async () => {
    const { supervisor } = await running();
    void supervisor.stop();
    await expect(supervisor.reload()).rejects.toMatchObject({ code: 'ERR_SHUTTING_DOWN' });
  });

  it('cancels a pending crash restart and stops at once when nothing is live', async () => {
    const { os, supervisor, events } = await running();
    os.child.exit(1);
    await supervisor.stop();
    expect(events).toEqual(['stopped']);
    await os.advance(10_000);
    expect(os.children).toHaveLength(1);
  });
});
