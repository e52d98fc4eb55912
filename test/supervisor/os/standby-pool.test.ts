import { describe, expect, it } from 'vitest';
import { EARLY_KILL_GRACE_MS, StandbyPool, STANDBY_DELAY_MS, shapeEnv, standbyArgs, wakeEnv, type StandbyPort } from '../../../supervisor/os/standby-pool.ts';
import type { SpawnSpec } from '../../../supervisor/os/os.ts';
import { FakeChild, FakeOs } from './fake-os.ts';

class FakeStandby extends FakeChild implements StandbyPort {
  adopted: SpawnSpec | undefined;
  adoptFails = false;
  /** How many messages had been sent to it when it was told to hold (undefined: never). */
  heldAfter: number | undefined;
  /** What it was booted to wake itself with (preboot). */
  wake: Record<string, string> | undefined;
  hold(): void {
    this.heldAfter ??= this.sent.length;
  }
  adopt(spec: SpawnSpec): void {
    if (this.adoptFails) throw new Error('EADDRINUSE');
    this.adopted = spec;
  }
}

function spec(over: Partial<SpawnSpec> = {}, env: Record<string, string> = {}): SpawnSpec {
  return {
    command: 'node',
    args: ['app.js'],
    cwd: '/srv',
    env: { PATH: '/bin', BATON_GENERATION: '1', BATON_WORKER: '0', LISTEN_FDS: '1', ...env },
    listenFds: [7],
    standby: true,
    ...over,
  };
}

function setup() {
  const os = new FakeOs();
  const fresh: FakeChild[] = [];
  const booted: FakeStandby[] = [];
  let pid = 100;
  let stamp = 'v1';
  const identities = new Map<number, string>([[7, 'ino-7']]);
  const pool = new StandbyPool({
    spawn: (s) => {
      const c = new FakeChild(++pid, s);
      fresh.push(c);
      return c;
    },
    boot: (s, wake) => {
      const c = new FakeStandby(++pid, s);
      c.wake = wake;
      booted.push(c);
      return c;
    },
    identity: (fd) => identities.get(fd) ?? 'closed',
    preloadStamp: () => stamp,
    timers: os,
  });
  const ready = (c: FakeChild): void => void c.push({ type: 'ready' });
  /** A first process spawned and ready, and the standby booted for its slot, waiting. */
  const waitingStandby = async (): Promise<FakeStandby> => {
    pool.spawn(spec());
    ready(fresh.at(-1) as FakeChild);
    await os.advance(STANDBY_DELAY_MS);
    const standby = booted.at(-1) as FakeStandby;
    standby.push({ type: 'standby' });
    return standby;
  };
  return { os, pool, fresh, booted, identities, ready, waitingStandby, restamp: (s: string) => (stamp = s) };
}

describe('StandbyPool', () => {
  it('boots a standby once a process is ready, and wakes it for the next spawn with the new generation', async () => {
    const { os, pool, fresh, booted, ready } = setup();
    const first = pool.spawn(spec());
    expect(fresh).toHaveLength(1);
    ready(fresh[0] as FakeChild);
    expect(booted).toHaveLength(0); // not while the new one is promoted
    await os.advance(STANDBY_DELAY_MS);
    expect(booted).toHaveLength(1);
    const standby = booted[0] as FakeStandby;
    expect(standby.spec.env.BATON_GENERATION).toBe('1'); // the pool boots from the spec; real-os strips it (shapeEnv)
    standby.push({ type: 'standby' });
    const second = pool.spawn(spec({}, { BATON_GENERATION: '2' }));
    expect(second).toBe(standby);
    expect(first).not.toBe(second);
    expect(fresh).toHaveLength(1);
    expect(standby.adopted?.env.BATON_GENERATION).toBe('2');
    const go = standby.sent.at(-1) as unknown as { type: string; env: Record<string, string> };
    expect(go.type).toBe('standby-go');
    expect(go.env).toEqual({ BATON_GENERATION: '2', BATON_WORKER: '0', LISTEN_FDS: '1' });
    expect(pool.size).toBe(0);
    expect(standby.heldAfter).toBeUndefined(); // woken by its spawn: nothing to hold for it
  });

  it('takes a standby still booting, and wakes it once it says it waits', async () => {
    const { os, pool, fresh, booted, ready } = setup();
    pool.spawn(spec());
    ready(fresh[0] as FakeChild);
    await os.advance(STANDBY_DELAY_MS);
    const standby = booted[0] as FakeStandby;
    const taken = pool.spawn(spec({}, { BATON_GENERATION: '2' }));
    expect(taken).toBe(standby);
    expect(fresh).toHaveLength(1);
    expect(standby.sent).toEqual([]); // a wake-up sent before its preload listens would be lost
    standby.push({ type: 'standby' });
    standby.push({ type: 'standby' }); // said twice: woken once
    expect(standby.sent.map((m) => m.type)).toEqual(['standby-go']);
  });

  it('keeps one standby per worker slot', async () => {
    const { os, pool, fresh, booted, ready } = setup();
    pool.spawn(spec({}, { BATON_WORKER: '0' }));
    pool.spawn(spec({}, { BATON_WORKER: '1' }));
    for (const c of fresh) ready(c);
    ready(fresh[0] as FakeChild); // a second ready of the same process boots nothing more
    await os.advance(STANDBY_DELAY_MS);
    expect(booted.map((b) => b.spec.env.BATON_WORKER)).toEqual(['0', '1']);
    for (const b of booted) b.push({ type: 'standby' });
    expect(pool.spawn(spec({}, { BATON_WORKER: '1' }))).toBe(booted[1]);
    expect(pool.spawn(spec({}, { BATON_WORKER: '0' }))).toBe(booted[0]);
  });

  it('keeps each slot’s standby when the slots have sockets of their own (balance: reuseport)', async () => {
    const { os, pool, fresh, booted, identities, ready } = setup();
    identities.set(8, 'ino-8');
    pool.spawn(spec({ listenFds: [7] }, { BATON_WORKER: '0' }));
    pool.spawn(spec({ listenFds: [8] }, { BATON_WORKER: '1' }));
    for (const c of fresh) ready(c);
    await os.advance(STANDBY_DELAY_MS);
    expect(booted.map((b) => b.spec.listenFds)).toEqual([[7], [8]]);
    for (const b of booted) b.push({ type: 'standby' });
    expect(pool.spawn(spec({ listenFds: [7] }, { BATON_WORKER: '0' }))).toBe(booted[0]);
    expect(pool.spawn(spec({ listenFds: [8] }, { BATON_WORKER: '1' }))).toBe(booted[1]);
  });

  it('drops the standbys of slots a smaller generation does not have', async () => {
    const { os, pool, fresh, booted, ready } = setup();
    pool.spawn(spec({}, { BATON_WORKER: '0', BATON_WORKERS: '2' }));
    pool.spawn(spec({}, { BATON_WORKER: '1', BATON_WORKERS: '2' }));
    for (const c of fresh) ready(c);
    await os.advance(STANDBY_DELAY_MS);
    pool.spawn(spec({}, { BATON_WORKER: '0', BATON_WORKERS: '1' }));
    expect(booted.map((b) => b.signals)).toEqual([['SIGTERM'], ['SIGTERM']]);
  });

  it.each([
    ['the command line', spec({ args: ['other.js'] })],
    ['the working directory', spec({ cwd: '/elsewhere' })],
    ['an environment variable', spec({}, { NODE_OPTIONS: '--max-old-space-size=64' })],
    ['the listeners', spec({ listenFds: [7, 8] })],
    ['the output sink', spec({ onLine: () => {} })],
  ])('discards the standby when %s changed, and starts the process cold', async (_what, changed) => {
    const { pool, waitingStandby } = setup();
    const standby = await waitingStandby();
    const next = pool.spawn(changed);
    expect(next).not.toBe(standby);
    expect(standby.signals).toEqual(['SIGTERM']);
    expect(standby.adopted).toBeUndefined();
  });

  it('does not take a standby holding a socket whose descriptor number now names another one', async () => {
    const { pool, booted, identities, waitingStandby } = setup();
    await waitingStandby();
    identities.set(7, 'ino-99');
    expect(pool.spawn(spec())).not.toBe(booted[0]);
    expect((booted[0] as FakeStandby).signals).toEqual(['SIGTERM']);
  });

  it('boots afresh once Baton’s own files changed (a new release installed)', async () => {
    const { pool, booted, restamp, waitingStandby } = setup();
    await waitingStandby();
    restamp('v2');
    expect(pool.spawn(spec())).not.toBe(booted[0]);
  });

  it('forgets a standby that exited, and starts cold', async () => {
    const { pool, fresh, waitingStandby } = setup();
    const standby = await waitingStandby();
    standby.exit(null, 'SIGKILL');
    expect(pool.size).toBe(0);
    expect(pool.spawn(spec())).toBe(fresh[1]);
  });

  it('starts cold when the standby cannot be adopted or its channel is gone', async () => {
    const { os, pool, fresh, booted, ready, waitingStandby } = setup();
    const a = await waitingStandby();
    a.adoptFails = true;
    expect(pool.spawn(spec())).toBe(fresh[1]);
    expect(a.signals).toEqual(['SIGTERM']);
    ready(fresh[1] as FakeChild);
    await os.advance(STANDBY_DELAY_MS);
    const b = booted[1] as FakeStandby;
    b.push({ type: 'standby' });
    b.connected = false;
    expect(pool.spawn(spec())).toBe(fresh[2]);
    expect(b.signals).toEqual(['SIGTERM']);
  });

  it('preboot: booted to wake itself with the guess, held from its start; the first spawn handing the same takes it, and no wake-up is ever sent', async () => {
    const { os, pool, fresh, booted, ready } = setup();
    pool.preboot(spec());
    expect(fresh).toHaveLength(0);
    const standby = booted[0] as FakeStandby;
    expect(standby.wake).toEqual(wakeEnv(spec().env));
    expect(standby.heldAfter).toBe(0);
    expect(pool.list()).toEqual([{ pid: standby.pid, worker: 0, waiting: false }]); // running the app: no standby to wake
    const taken = pool.spawn(spec());
    expect(taken).toBe(standby);
    expect(standby.adopted).toEqual(spec());
    expect(standby.sent).toEqual([]);
    expect(fresh).toHaveLength(0);
    expect(pool.size).toBe(0);
    // From then on it is a generation like any other: its slot's next standby follows its ready, and waits.
    ready(standby);
    await os.advance(STANDBY_DELAY_MS);
    expect(booted).toHaveLength(2);
    const next = booted[1] as FakeStandby;
    expect(next.wake).toBeUndefined();
    expect(next.heldAfter).toBeUndefined();
    next.push({ type: 'standby' });
    expect(next.sent).toEqual([]); // a reload's standby waits for its spawn
    expect(pool.spawn(spec({}, { BATON_GENERATION: '2' }))).toBe(next);
    expect(next.sent.map((m) => m.type)).toEqual(['standby-go']);
  });

  it('preboot: taken however far its boot is — a standby message from it changes nothing', async () => {
    const { pool, booted } = setup();
    pool.preboot(spec());
    const standby = booted[0] as FakeStandby;
    standby.push({ type: 'standby' });
    expect(standby.sent).toEqual([]);
    expect(pool.spawn(spec())).toBe(standby);
    expect(standby.sent).toEqual([]);
  });

  it.each([
    ['hands other per-generation variables', spec({}, { BATON_MEMORY_INTERVAL: '1000' })],
    ['hands fewer of them', ((s) => (delete s.env.BATON_WORKER, s))(spec())],
    ['is of another shape', spec({}, { NODE_OPTIONS: '--max-old-space-size=64' })],
  ])('preboot: it is killed when the first spawn %s (SIGKILL if SIGTERM leaves it running), and the spawn starts fresh', async (_what, other) => {
    const { os, pool, fresh, booted } = setup();
    pool.preboot(spec());
    const standby = booted[0] as FakeStandby;
    const taken = pool.spawn(other);
    expect(taken).toBe(fresh[0]);
    expect(standby.adopted).toBeUndefined();
    expect(standby.sent).toEqual([]);
    expect(standby.signals).toEqual(['SIGTERM']);
    await os.advance(EARLY_KILL_GRACE_MS);
    expect(standby.signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(pool.size).toBe(0);
  });

  it('preboot: exited (the app threw at import) or not adoptable, the spawn starts fresh', async () => {
    const { pool, fresh, booted } = setup();
    pool.preboot(spec());
    const crashed = booted[0] as FakeStandby;
    crashed.exit(1);
    expect(pool.spawn(spec())).toBe(fresh[0]);
    expect(crashed.adopted).toBeUndefined();

    const second = setup();
    second.pool.preboot(spec());
    const gone = second.booted[0] as FakeStandby;
    gone.adoptFails = true; // exited, its exit not yet read
    expect(second.pool.spawn(spec())).toBe(second.fresh[0]);
    expect(gone.signals).toEqual(['SIGTERM']);
  });

  it('clear() kills a prebooted standby too, with SIGKILL to follow', async () => {
    const { os, pool, booted } = setup();
    pool.preboot(spec());
    pool.clear();
    await os.advance(EARLY_KILL_GRACE_MS);
    expect((booted[0] as FakeStandby).signals).toEqual(['SIGTERM', 'SIGKILL']);
  });

  it('clear() kills every standby, and none boots for a shape spawned no more', async () => {
    const { os, pool, fresh, booted, ready } = setup();
    pool.spawn(spec());
    ready(fresh[0] as FakeChild);
    await os.advance(STANDBY_DELAY_MS);
    pool.clear();
    expect((booted[0] as FakeStandby).signals).toEqual(['SIGTERM']);
    expect(pool.size).toBe(0);
    // A process of the old shape becomes ready after one of a new shape was spawned: no standby for it.
    const old = pool.spawn(spec());
    pool.spawn(spec({ args: ['v2.js'] }));
    ready(old as FakeChild);
    await os.advance(STANDBY_DELAY_MS);
    expect(booted).toHaveLength(1);
  });
});

describe('standby environment and arguments', () => {
  it('splits the environment into what a standby boots with and what it is handed on waking', () => {
    const env = { PATH: '/bin', NODE_OPTIONS: '-r x', BATON_GENERATION: '4', LISTEN_FDS: '1', NOTIFY_SOCKET: '/run/n.sock', NOTIFY_SOCKETS: 'kept' };
    expect(shapeEnv(env)).toEqual({ PATH: '/bin', NODE_OPTIONS: '-r x', NOTIFY_SOCKETS: 'kept' });
    expect(wakeEnv(env)).toEqual({ BATON_GENERATION: '4', LISTEN_FDS: '1', NOTIFY_SOCKET: '/run/n.sock' });
  });

  it('imports the standby preload before Baton’s own preload, after loaders that come first', () => {
    expect(standbyArgs(['app.js'], 'S')).toEqual(['--import', 'S', 'app.js']);
    expect(standbyArgs(['--import', 'tsx', '--import', 'file:///b/child/register.ts', 'app.ts'], 'S')).toEqual([
      '--import', 'tsx', '--import', 'S', '--import', 'file:///b/child/register.ts', 'app.ts',
    ]);
  });
});
