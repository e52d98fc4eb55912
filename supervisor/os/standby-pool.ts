/**
 * Standby processes (`standby: true`): the next process of each worker slot, booted while the
 * current one serves — Node started, Baton's standby preload and what every generation loads
 * (node:http, the SDK) imported — so a reload or a crash restart pays only for the app's own
 * import. Issue #19: Node's boot and those imports are most of a reload's time.
 *
 * A standby is taken only by a spawn it was booted for: the same command, arguments, working
 * directory, environment (but for the per-generation variables it is handed on waking), the
 * same sockets (descriptor and inode), and the same files of Baton's preload. Anything else
 * gets a fresh process and the stale standby is killed: a standby never runs code or settings a
 * generation was not started with.
 *
 * One exception, `baton dev`'s first generation (preboot): it is booted with the guessed
 * per-generation variables and wakes itself once preloaded, so the app imports and asks for its
 * listener while the supervisor's modules still load; its spawn takes it only if it hands exactly
 * what was guessed.
 */
import { ENV } from '../../shared/launch-env.ts';
import { PROTOCOL_VERSION, isEnvelope } from '../../shared/protocol.ts';
import type { ChildPort, SpawnSpec, Timers } from './os.ts';

/** A process booted ahead; `adopt` makes it the process a spawn asked for. */
export interface StandbyPort extends ChildPort {
  /** From now on, holds what the process says — its messages and its output lines — for the spawn that adopts it. */
  hold(): void;
  /**
   * Binds `spec`'s NOTIFY_SOCKET and takes `spec`'s output sink; the wake-up message follows unless
   * it was woken early. What was held is then delivered in order: the lines at once, the messages
   * once the adopter's listeners are attached (after the current turn).
   */
  adopt(spec: SpawnSpec): void;
}

export interface StandbyDeps {
  /** A process as `spec` asks for it, started now. */
  spawn(spec: SpawnSpec): ChildPort;
  /** A standby for `spec`: its shape's environment, no NOTIFY_SOCKET, the standby preload first; given `wake`, one that wakes itself with it (STANDBY_WAKE). */
  boot(spec: SpawnSpec, wake?: Record<string, string>): StandbyPort;
  /** What identifies descriptor `fd`'s open file (its inode), so a reused number does not match. */
  identity(fd: number): string;
  /** What identifies the preload's files now (their mtimes), so an upgraded Baton boots afresh. */
  preloadStamp(): string;
  timers: Pick<Timers, 'setTimeout'>;
}

/** How long after a generation's process is ready its slot's standby is booted: not while it warms up and gets promoted. */
export const STANDBY_DELAY_MS = 100;

/** How long a standby woken early and then not taken has to exit after SIGTERM before SIGKILL: the app may handle SIGTERM. */
export const EARLY_KILL_GRACE_MS = 2000;

/** The variable that hands a prebooted standby, at boot, the per-generation variables it wakes itself with (read by child/standby.ts). */
export const STANDBY_WAKE = 'BATON_STANDBY_WAKE';

/** Per-generation variables: handed over on waking, so one standby serves whichever generation comes next. */
const PER_GENERATION = /^(LISTEN_|BATON_|NOTIFY_SOCKET$)/;

/**
 * booting: started, its preload loading. waiting: it said `standby`; a wake-up sent now is heard.
 * woken-early: preboot's only, from its start — it wakes itself with the guessed variables once
 * preloaded, and runs the app before any spawn took it. A wake-up message could not do that: the
 * supervisor's process runs no event loop turn while its modules load, so it would hear the
 * standby only after its first spawn.
 */
type StandbyState = 'booting' | 'waiting' | 'woken-early';

/** The moves a standby may make; leaving the pool (taken, dropped, exited) is no state of its own. */
const MOVES: Record<StandbyState, readonly StandbyState[]> = {
  booting: ['waiting'],
  waiting: [],
  'woken-early': [],
};

interface Entry {
  port: StandbyPort;
  shape: Shape;
  state: StandbyState;
  /** Taken while still booting: the wake-up to send once it says it waits. */
  pending?: Record<string, string>;
  /** Prebooted: the per-generation variables it woke itself with (the guess of the first spawn's). */
  early?: Record<string, string>;
}

function move(entry: Entry, to: StandbyState): void {
  if (!MOVES[entry.state].includes(to)) throw new Error(`standby pid ${entry.port.pid}: ${entry.state} → ${to} is no allowed move`);
  entry.state = to;
}

/** The environment a standby boots with: `env` without the per-generation variables. */
export function shapeEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !PER_GENERATION.test(k)));
}

/** What a standby is handed on waking: `env`'s per-generation variables. */
export function wakeEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => PER_GENERATION.test(k)));
}

/**
 * `args` of a Node command with the standby preload imported first — but after loaders that come
 * before Baton's own preload (tsx): those read nothing of the generation, so they load ahead too.
 */
export function standbyArgs(args: string[], preload: string): string[] {
  const at = args.findIndex((a, i) => a === '--import' && (args[i + 1] ?? '').includes('child/register'));
  const i = at === -1 ? 0 : at;
  return [...args.slice(0, i), '--import', preload, ...args.slice(i)];
}

/**
 * What a spawn must share with a standby to take it. `family`: the same for every worker slot of
 * a generation; `sockets`: the slot's own (with `balance: reuseport`, each slot has its socket).
 */
interface Shape {
  family: string;
  sockets: string;
}

const same = (a: Shape, b: Shape): boolean => a.family === b.family && a.sockets === b.sockets;

const sorted = (env: Record<string, string>): string => JSON.stringify(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** At most one standby per worker slot, of the shape last spawned. */
export class StandbyPool {
  private readonly entries = new Map<string, Entry>();
  private readonly deps: StandbyDeps;
  /** The family of the latest spawn: only its standbys can be taken. */
  private latest: string | undefined;

  constructor(deps: StandbyDeps) {
    this.deps = deps;
  }

  /** The process for `spec`: its slot's standby woken (once it waits, if still booting), else a fresh one; either way its slot's next standby boots once it is ready. */
  spawn(spec: SpawnSpec): ChildPort {
    const shape = this.shapeOf(spec);
    const slot = spec.env[ENV.worker] ?? '0';
    this.latest = shape.family;
    // Another family means a new command, config or release (or worker count): its standbys would
    // never be taken; the slot's own with other sockets neither.
    for (const [key, entry] of this.entries) {
      if (entry.shape.family !== shape.family || (key === slot && !same(entry.shape, shape))) this.drop(key, entry);
    }
    const entry = this.entries.get(slot);
    let port: ChildPort;
    if (entry?.state === 'woken-early') port = this.takeEarly(slot, entry, spec) ?? this.deps.spawn(spec);
    // One still booting is further along than a process started now: it is woken once it waits.
    else if (entry && this.wake(slot, entry, spec)) port = entry.port;
    else port = this.deps.spawn(spec);
    let armed = true;
    port.onMessage((m) => {
      if (!armed || !isEnvelope(m) || m.type !== 'ready') return;
      armed = false;
      this.deps.timers.setTimeout(() => this.prepare(spec, shape, slot), STANDBY_DELAY_MS);
    });
    return port;
  }

  /**
   * Boots `spec`'s standby now, before anything was spawned (`baton dev`: its first generation's
   * process boots while the supervisor's own modules load), to wake itself with `spec`'s own
   * per-generation variables, so the app is imported meanwhile too. The first spawn of the same
   * shape handing the same variables takes it as it is; a spawn of any other kills it.
   */
  preboot(spec: SpawnSpec): void {
    const shape = this.shapeOf(spec);
    this.latest = shape.family;
    this.prepare(spec, shape, spec.env[ENV.worker] ?? '0', wakeEnv(spec.env));
  }

  /** Kills every standby (the supervisor stops, or hands over to a successor that boots its own). */
  clear(): void {
    for (const [key, entry] of this.entries) this.drop(key, entry);
  }

  /** Each standby's pid, worker slot, and whether it waits (booted and preloaded, not woken). */
  list(): { pid: number; worker: number; waiting: boolean }[] {
    return [...this.entries].map(([slot, e]) => ({ pid: e.port.pid, worker: Number(slot), waiting: e.state === 'waiting' }));
  }

  /** How many standbys are booted or waiting. */
  get size(): number {
    return this.entries.size;
  }

  private prepare(spec: SpawnSpec, shape: Shape, slot: string, early?: Record<string, string>): void {
    // A later spawn of another family, a socket closed since, or one already there makes this one moot.
    if (this.entries.has(slot) || this.latest !== shape.family || !same(this.shapeOf(spec), shape)) return;
    let port: StandbyPort;
    try {
      port = this.deps.boot(spec, early);
    } catch {
      return; // no standby: the next spawn starts cold, as without the option
    }
    // Held from the start, before a line or message of it can have been read: the app will run.
    if (early) port.hold();
    const entry: Entry = { port, shape, state: early ? 'woken-early' : 'booting', ...(early ? { early } : {}) };
    this.entries.set(slot, entry);
    port.onMessage((m) => {
      if (!isEnvelope(m) || m.type !== 'standby' || entry.state !== 'booting') return;
      move(entry, 'waiting');
      if (entry.pending && !this.go(entry, entry.pending)) entry.port.kill('SIGTERM');
    });
    port.onExit(() => {
      if (this.entries.get(slot) === entry) this.entries.delete(slot);
    });
  }

  /**
   * The standby woken early, if `spec` hands it exactly the variables it was woken with; else it is
   * killed and undefined returned (the spawn starts fresh). Then the app has run once with the guess,
   * its import's side effects done: acceptable for a dev runner only, and only because the guess is
   * normally exact (test/supervisor/dev/early-start.test.ts checks it against the real spawn).
   */
  private takeEarly(slot: string, entry: Entry, spec: SpawnSpec): StandbyPort | undefined {
    if (sorted(entry.early ?? {}) !== sorted(wakeEnv(spec.env))) {
      this.drop(slot, entry);
      return undefined;
    }
    this.entries.delete(slot);
    try {
      entry.port.adopt(spec);
    } catch {
      this.kill(entry); // it exited (the app threw at import?), or its NOTIFY_SOCKET could not be bound
      return undefined;
    }
    return entry.port; // woken already: no second standby-go
  }

  private wake(slot: string, entry: Entry, spec: SpawnSpec): boolean {
    this.entries.delete(slot);
    try {
      entry.port.adopt(spec);
    } catch {
      entry.port.kill('SIGTERM'); // its NOTIFY_SOCKET could not be bound: a fresh spawn reports why
      return false;
    }
    if (entry.state === 'booting') {
      entry.pending = wakeEnv(spec.env);
      return true;
    }
    if (this.go(entry, wakeEnv(spec.env))) return true;
    entry.port.kill('SIGTERM'); // its channel is gone: it is exiting
    return false;
  }

  private go(entry: Entry, env: Record<string, string>): boolean {
    return entry.port.send({ baton: PROTOCOL_VERSION, seq: 0, type: 'standby-go', env });
  }

  private drop(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.kill(entry);
  }

  private kill(entry: Entry): void {
    entry.port.kill('SIGTERM');
    // A standby that never ran the app dies of SIGTERM; one woken early runs the app, whose own
    // SIGTERM handler may keep it alive: it must not be left behind (kill() of an exited one is a no-op).
    if (entry.state === 'woken-early') this.deps.timers.setTimeout(() => entry.port.kill('SIGKILL'), EARLY_KILL_GRACE_MS);
  }

  private shapeOf(spec: SpawnSpec): Shape {
    const env = Object.entries(shapeEnv(spec.env)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      family: JSON.stringify([spec.command, spec.args, spec.cwd, env, spec.env[ENV.workers], spec.onLine !== undefined, this.deps.preloadStamp()]),
      sockets: spec.listenFds.map((fd) => `${fd}:${this.deps.identity(fd)}`).join(','),
    };
  }
}
