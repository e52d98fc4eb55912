import { describe, expect, it } from 'vitest';
import { formatAddress, parseAddress } from '../../../shared/address.ts';
import { isBatonError } from '../../../shared/errors.ts';
import type { Config } from '../../../supervisor/config/config.ts';
import { GENERATION_TRANSITIONS, type GenerationState } from '../../../supervisor/core/generation.ts';
import { checkTransition, type TransitionTable } from '../../../supervisor/core/state-table.ts';
import { SUPERVISOR_TRANSITIONS, type SupervisorMode } from '../../../supervisor/core/supervisor-mode.ts';
import { Supervisor } from '../../../supervisor/core/supervisor.ts';
import { FakeOs, flush, observe, silentLog } from '../os/fake-os.ts';

function config(): Config {
  const address = parseAddress('127.0.0.1:8080');
  return {
    name: 'shop',
    command: ['node', 'server.js'],
    cwd: '/srv/shop',
    env: {},
    listeners: [{ name: 'http', address, key: formatAddress(address), backlog: 511 }],
    readyTimeout: 5000,
    drainTimeout: 30_000,
    shutdownTimeout: 5000,
    readiness: { mode: 'sdk' },
    drainSignal: 'SIGTERM',
    restart: { maxFailures: 5, window: 60_000, backoffInitial: 100, backoffMax: 1000 },
    runtimeListeners: 'loopback',
    logLevel: 'info',
    stats: { dir: '/dev/shm', maxBytes: 64 * 1024 * 1024, maxNameLength: 1024, capacities: {} },
  };
}

function setup() {
  const os = new FakeOs();
  const supervisor = new Supervisor(config(), { os, log: silentLog, loadConfig: () => config() });
  const modes: (SupervisorMode | undefined)[] = [];
  const seen = () => {
    const mode = supervisor.status().mode;
    if (modes.at(-1) !== mode) modes.push(mode);
  };
  return { os, supervisor, modes, seen };
}

/** Every state named in a table is a key of it, and every key but the final one leads somewhere. */
function wellFormed<S extends string>(table: TransitionTable<S>, final: S): void {
  const states = Object.keys(table) as S[];
  for (const s of states) {
    for (const to of table[s]) expect(states).toContain(to);
    if (s !== final) expect(table[s].length).toBeGreaterThan(0);
    expect(table[s]).not.toContain(s);
  }
  expect(table[final]).toEqual([]);
}

describe('transition tables', () => {
  it('are closed: every target is a state, only the final state is a dead end', () => {
    wellFormed(GENERATION_TRANSITIONS, 'exited');
    wellFormed(SUPERVISOR_TRANSITIONS, 'stopped');
  });

  it('throws ERR_ILLEGAL_TRANSITION under tests for a move the table does not list, and names both ends', () => {
    expect(checkTransition<GenerationState>('generation 1', GENERATION_TRANSITIONS, 'starting', 'ready', silentLog)).toBe(true);
    expect(checkTransition<GenerationState>('generation 1', GENERATION_TRANSITIONS, 'ready', 'ready', silentLog)).toBe(false);
    let error: unknown;
    try {
      checkTransition<GenerationState>('generation 1', GENERATION_TRANSITIONS, 'draining', 'active', silentLog);
    } catch (err) {
      error = err;
    }
    expect(isBatonError(error, 'ERR_ILLEGAL_TRANSITION')).toBe(true);
    expect((error as Error).message).toContain('generation 1: draining → active');
    expect(() => checkTransition<SupervisorMode>('supervisor', SUPERVISOR_TRANSITIONS, 'stopped', 'serving', silentLog)).toThrow(/stopped → serving/);
  });

  it('a generation drained while starting stays draining when its ready comes late, then exits', async () => {
    const { os, supervisor } = setup();
    supervisor.start();
    const stopped = observe(supervisor.stop());
    await os.child.sayReady();
    expect(supervisor.status().generations.map((g) => g.state)).toEqual(['draining']);
    os.child.exit(0);
    await flush();
    expect(supervisor.status().generations.map((g) => g.state)).toEqual(['exited']);
    expect(stopped.state).toBe('resolved');
  });
});

describe('supervisor mode', () => {
  it('idle → starting → serving → reloading → serving → recovering → serving → stopping → stopped', async () => {
    const { os, supervisor, modes, seen } = setup();
    seen();
    supervisor.start();
    seen();
    await os.child.sayReady();
    seen();
    const reload = supervisor.reload();
    seen();
    await os.child.sayReady();
    await reload;
    seen();
    os.children[0]?.exit(0);
    os.child.exit(1);
    seen();
    await os.advance(100);
    await os.child.sayReady();
    seen();
    const stopped = observe(supervisor.stop());
    seen();
    for (const c of os.children) if (!c.exited) c.exit(0);
    await flush();
    seen();
    expect(stopped.state).toBe('resolved');
    expect(modes).toEqual(['idle', 'starting', 'serving', 'reloading', 'serving', 'recovering', 'serving', 'stopping', 'stopped']);
  });

  it('a first generation that fails keeps the supervisor starting; a failed reload with none serving leaves it starting', async () => {
    const { os, supervisor } = setup();
    supervisor.start();
    os.child.exit(1);
    await flush();
    expect(supervisor.status().mode).toBe('starting');
    const reload = observe(supervisor.reload());
    expect(supervisor.status().mode).toBe('reloading');
    os.child.exit(1);
    await flush();
    expect(reload.state).toBe('rejected');
    expect(supervisor.status().mode).toBe('starting');
  });

  it('refuses an upgrade during a reload, and a reload during an upgrade; a failed upgrade returns to serving', async () => {
    const { os, supervisor } = setup();
    supervisor.start();
    await os.child.sayReady();
    const reload = supervisor.reload();
    expect(() => supervisor.beginHandOver()).toThrow(/reload is under way/);
    await os.child.sayReady();
    await reload;
    supervisor.beginHandOver();
    expect(supervisor.status().mode).toBe('upgrading');
    await expect(supervisor.reload()).rejects.toMatchObject({ code: 'ERR_UPGRADING' });
    expect(() => supervisor.beginHandOver()).toThrow(/upgrade is under way/);
    supervisor.resumeAfterHandOver();
    expect(supervisor.status().mode).toBe('serving');
  });

  it('a retiring supervisor ends stopped without passing through stopping', async () => {
    const { os, supervisor, modes, seen } = setup();
    supervisor.start();
    await os.child.sayReady();
    supervisor.beginHandOver();
    seen();
    const retired = observe(supervisor.retire(4242));
    seen();
    os.child.exit(0);
    await flush();
    seen();
    expect(retired.state).toBe('resolved');
    expect(modes).toEqual(['upgrading', 'retiring', 'stopped']);
  });
});
