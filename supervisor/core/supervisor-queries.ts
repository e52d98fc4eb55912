import { EventEmitter } from 'node:events';
import type { Level, Logger } from 'pino';
import { formatAddress } from '../../shared/address.ts';
import type { ReplyBody } from '../../shared/protocol.ts';
import type { StatSample } from '../../shared/stats/index.ts';
import type { Config } from '../config/config.ts';
import { MemoryMonitor, type GenerationMemory } from '../memory/monitor.ts';
import type { MemoryProbe, ProcMemory } from '../memory/proc.ts';
import type { FdStore } from '../sockets/fd-store.ts';
import { checkProfileSeconds, cpuProfile, heapProfile, heapSnapshot, profileDir, releaseMemory, requestTarget, type ProfileResult } from './generation-requests.ts';
import { checkSnapshotSpace, pruneProfiles } from '../memory/profiles.ts';
import { retireSnapshot } from '../memory/retire.ts';
import { announce, EventBus, type BatonEvent } from './events.ts';
import { GenerationTable } from './generation-table.ts';
import type { Generation } from './generation.ts';
import { NoStats, type StatsSink } from './stats-sink.ts';
import { ModeMachine } from './supervisor-mode.ts';
import type { StatusSnapshot, SupervisorDeps, SupervisorEvents } from './supervisor-types.ts';

/**
 * What a supervisor knows and answers about its generations — status, stats, memory, profiles —
 * apart from how it runs them (Supervisor).
 */
export abstract class SupervisorQueries extends EventEmitter<SupervisorEvents> {
  protected readonly deps: SupervisorDeps;
  protected readonly log: Logger;
  protected readonly store: FdStore;
  protected readonly startedAt: number;
  protected config: Config;
  protected readonly generations = new GenerationTable();
  protected active: Generation | undefined;
  protected readonly mode: ModeMachine;
  protected readonly sink: StatsSink;
  protected readonly memory: MemoryMonitor | undefined;
  /** What happens to the generations, reloads, stats and memory, as typed events (GET /events, the dev runner). */
  readonly events: EventBus;

  /** Hot-restarts the active generation with the release and config in force; resolves with the new one's number. */
  protected readonly replace: () => Promise<number>;

  /** `replace` is what the memory monitor calls to replace a generation over its limit (and a retiring snapshot). */
  constructor(config: Config, deps: SupervisorDeps, store: FdStore, replace: () => Promise<number>) {
    super();
    this.replace = replace;
    this.config = config;
    this.deps = deps;
    this.events = deps.events ?? new EventBus();
    this.log = deps.log;
    this.store = store;
    this.sink = deps.stats ?? new NoStats();
    this.mode = new ModeMachine(deps.log);
    this.startedAt = deps.os.now();
    if (deps.memoryProbe && config.memory && config.memory.interval > 0) {
      this.memory = new MemoryMonitor(
        config.memory,
        deps.os,
        summedOverWorkers(deps.memoryProbe, () => this.live()),
        { live: () => this.live(), snapshot: (filter) => this.sink.snapshot(filter), release: (id) => this.release(id), replace },
        deps.log,
        this.events,
      );
    }
  }

  /** Logs `msg` with the event's fields and publishes the event. */
  protected announce(level: Level, event: BatonEvent, msg: string, extra?: Record<string, unknown>): void {
    announce(this.events, this.log, level, event, msg, extra);
  }

  status(): StatusSnapshot {
    const now = this.deps.os.now();
    // Processes that escaped an ended generation and keep its port (issue #11): named, not killed.
    const strays = this.deps.os.strays?.(this.store.all().map((l) => l.fd));
    const standbys = this.deps.os.standbys?.() ?? [];
    return {
      instance: this.config.name,
      pid: process.pid,
      uptimeMs: now - this.startedAt,
      active: this.active?.id ?? null,
      stopping: this.mode.ending,
      mode: this.mode.mode,
      generations: this.generations.infos(
        (id) => this.memory?.flag(id),
        (pid) => this.deps.memoryProbe?.read(pid)?.rss,
      ),
      listeners: this.store.all().map((l) => {
        const s = strays?.get(l.fd);
        return { name: l.name, address: formatAddress(l.bound), fd: l.fd, ...(l.origin ? { from: l.origin } : {}), ...(s ? { strays: s } : {}) };
      }),
      ...(standbys.length > 0 ? { standbys } : {}),
    };
  }

  /** One line for a service manager: the active generation, how many drain, open connections. */
  summary(): string {
    return this.generations.summary(this.active, this.mode.ending);
  }

  /** Every stat in the shared segment whose name matches `filter`, summed over generations. */
  stats(filter?: RegExp): StatSample[] {
    return this.sink.snapshot(filter);
  }

  /** Per generation: now/min/max/slope of the main figures, fragmentation and allocator summary. */
  memoryReport(): { interval: number; window: number; generations: GenerationMemory[] } {
    const m = this.config.memory;
    return { interval: m?.interval ?? 0, window: m?.window ?? 0, generations: this.memory?.report() ?? [] };
  }

  /** The full memory series of one generation or all. */
  memorySeries(generation?: number): ReturnType<MemoryMonitor['seriesOf']> {
    return this.memory?.seriesOf(generation) ?? [];
  }

  /** Asks a generation (the active one by default) to release memory: GC, then malloc_trim. */
  async release(generation?: number): Promise<ReplyBody> {
    const g = this.target(generation);
    const reply = await releaseMemory(g);
    if (reply.ok) this.memory?.noteReleased(g.id, Number(reply.released ?? 0));
    return reply;
  }

  /**
   * Has a generation (the active one by default) write a heap snapshot; resolves with its path.
   * `retire` (the default for the active generation) hot-restarts it first and snapshots the old
   * one once it no longer serves, so no client waits on the snapshot; `compare` also snapshots the new one.
   */
  async heapSnapshot(generation?: number, options: { retire?: boolean; compare?: boolean } = {}): Promise<ProfileResult> {
    const g = this.target(generation);
    const dir = profileDir(this.config);
    checkSnapshotSpace(dir, this.memory?.heapOf(g.id) ?? 0);
    const retire = options.retire ?? g === this.active;
    const wait = this.config.drainTimeout + 120_000;
    const result = !retire
      ? await heapSnapshot(g, dir)
      : await retireSnapshot(
          { snapshotOnDrain: () => heapSnapshot(g, dir, true, wait), reload: this.replace, snapshotNew: (n) => heapSnapshot(this.target(n), dir) },
          options.compare === true,
        );
    pruneProfiles(dir);
    return result;
  }

  /** Has a generation record a CPU profile for `seconds`; resolves with its path. */
  async cpuProfile(generation: number | undefined, seconds: number): Promise<ProfileResult> {
    checkProfileSeconds(seconds);
    return cpuProfile(this.target(generation), profileDir(this.config), seconds);
  }

  /** Has a generation record a sampling heap profile for `seconds`; resolves with its path. */
  async heapProfile(generation: number | undefined, seconds: number): Promise<ProfileResult> {
    // A bad length is the caller's first mistake to hear about, before which generation or where.
    checkProfileSeconds(seconds);
    return heapProfile(this.target(generation), profileDir(this.config), seconds);
  }

  protected target(generation?: number): Generation {
    return requestTarget(this.live(), this.active, generation);
  }

  protected live(): Generation[] {
    return this.generations.live();
  }
}

/**
 * `probe` reading a generation's pid as the sum over its live workers. It keeps the probe's cheap
 * `rss` too: without it the memory monitor has no limit watch between samples (a fast leak was met
 * only at the next 5 s sample, 80–95 % over a 400 MiB hard limit).
 */
export function summedOverWorkers(probe: MemoryProbe, live: () => Generation[]): MemoryProbe {
  const pids = (pid: number): number[] => {
    const g = live().find((x) => x.pid === pid);
    return !g || g.size === 1 ? [pid] : g.workers.filter((w) => w.state !== 'exited').map((w) => w.pid);
  };
  const rss = probe.rss?.bind(probe);
  return {
    ...(rss
      ? {
          rss(pid: number) {
            const readings = pids(pid).map((p) => rss(p)).filter((n): n is number => n !== undefined);
            return readings.length === 0 ? undefined : readings.reduce((a, b) => a + b, 0);
          },
        }
      : {}),
    read(pid) {
      const g = live().find((x) => x.pid === pid);
      if (!g || g.size === 1) return probe.read(pid);
      const readings = g.workers.filter((w) => w.state !== 'exited').map((w) => probe.read(w.pid)).filter((m): m is ProcMemory => m !== undefined);
      if (readings.length === 0) return undefined;
      const sum: ProcMemory = { rss: 0, pss: 0, privateDirty: 0, anonymous: 0, swap: 0 };
      for (const m of readings) for (const k of Object.keys(sum) as (keyof ProcMemory)[]) sum[k] += m[k];
      return sum;
    },
  };
}
