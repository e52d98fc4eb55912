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
 */
import { ENV } from '../../shared/launch-env.ts';
import { PROTOCOL_VERSION, isEnvelope } from '../../shared/protocol.ts';
import type { ChildPort, SpawnSpec, Timers } from './os.ts';

/** A process booted ahead; `adopt` makes it the process a spawn asked for. */
export interface StandbyPort extends ChildPort {
  /** Binds `spec`'s NOTIFY_SOCKET and takes `spec`'s output sink; the wake-up message follows. */
  adopt(spec: SpawnSpec): void;
}

export interface StandbyDeps {
  /** A process as `spec` asks for it, started now. */
  spawn(spec: SpawnSpec): ChildPort;
  /** A standby for `spec`: its shape's environment, no NOTIFY_SOCKET, the standby preload first. */
  boot(spec: SpawnSpec): StandbyPort;
  /** What identifies descriptor `fd`'s open file (its inode), so a reused number does not match. */
  identity(fd: number): string;
  /** What identifies the preload's files now (their mtimes), so an upgraded Baton boots afresh. */
  preloadStamp(): string;
  timers: Pick<Timers, 'setTimeout'>;
}

/** How long after a generation's process is ready its slot's standby is booted: not while it warms up and gets promoted. */
export const STANDBY_DELAY_MS = 100;

/** Per-generation variables: handed over on waking, so one standby serves whichever generation comes next. */
const PER_GENERATION = /^(LISTEN_|BATON_|NOTIFY_SOCKET$)/;

interface Entry {
  port: StandbyPort;
  shape: Shape;
  /** It said it waits (`standby`): a wake-up sent now is heard. */
  waiting: boolean;
  /** Taken while still booting: the wake-up to send once it says it waits. */
  pending?: Record<string, string>;
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
    // One still booting is further along than a process started now: it is woken once it waits.
    if (entry && this.wake(slot, entry, spec)) port = entry.port;
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
   * process boots while the supervisor's own modules load). The first spawn of the same shape takes
   * it; a spawn of any other kills it, as for any stale standby.
   */
  preboot(spec: SpawnSpec): void {
    const shape = this.shapeOf(spec);
    this.latest = shape.family;
    this.prepare(spec, shape, spec.env[ENV.worker] ?? '0');
  }

  /** Kills every standby (the supervisor stops, or hands over to a successor that boots its own). */
  clear(): void {
    for (const [key, entry] of this.entries) this.drop(key, entry);
  }

  /** Each standby's pid, worker slot, and whether it waits (booted and preloaded). */
  list(): { pid: number; worker: number; waiting: boolean }[] {
    return [...this.entries].map(([slot, e]) => ({ pid: e.port.pid, worker: Number(slot), waiting: e.waiting }));
  }

  /** How many standbys are booted or waiting. */
  get size(): number {
    return this.entries.size;
  }

  private prepare(spec: SpawnSpec, shape: Shape, slot: string): void {
    // A later spawn of another family, a socket closed since, or one already there makes this one moot.
    if (this.entries.has(slot) || this.latest !== shape.family || !same(this.shapeOf(spec), shape)) return;
    let port: StandbyPort;
    try {
      port = this.deps.boot(spec);
    } catch {
      return; // no standby: the next spawn starts cold, as without the option
    }
    const entry: Entry = { port, shape, waiting: false };
    this.entries.set(slot, entry);
    port.onMessage((m) => {
      if (!isEnvelope(m) || m.type !== 'standby' || entry.waiting) return;
      entry.waiting = true;
      if (entry.pending && !this.go(entry, entry.pending)) entry.port.kill('SIGTERM');
    });
    port.onExit(() => {
      if (this.entries.get(slot) === entry) this.entries.delete(slot);
    });
  }

  private wake(slot: string, entry: Entry, spec: SpawnSpec): boolean {
    this.entries.delete(slot);
    try {
      entry.port.adopt(spec);
    } catch {
      entry.port.kill('SIGTERM'); // its NOTIFY_SOCKET could not be bound: a fresh spawn reports why
      return false;
    }
    if (!entry.waiting) {
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
    entry.port.kill('SIGTERM');
  }

  private shapeOf(spec: SpawnSpec): Shape {
    const env = Object.entries(shapeEnv(spec.env)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      family: JSON.stringify([spec.command, spec.args, spec.cwd, env, spec.env[ENV.workers], spec.onLine !== undefined, this.deps.preloadStamp()]),
      sockets: spec.listenFds.map((fd) => `${fd}:${this.deps.identity(fd)}`).join(','),
    };
  }
}
