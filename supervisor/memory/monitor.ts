/**
 * Memory tracking of every generation, on the supervisor's side: each interval it reads
 * /proc/<pid>/smaps_rollup (through a probe unit tests fake) and the child's own gauges from the
 * shared segment, appends them to the generation's series, and acts: growth detection (logged once
 * per change, shown in `baton status`), the soft limit (ask the generation to release memory) and
 * the hard limit (a zero-downtime replacement through the supervisor's own reload, rate-limited).
 */
import type { Logger } from 'pino';
import { announce, NoEvents, type EventSink } from '../core/events.ts';
import { childFiguresByWriter, runtimeByWriter, type ChildMemory, type RuntimeHealth } from '../../shared/memory-figures.ts';

/** The memory and runtime-health gauges children write. */
const CHILD_FILTER = /^baton\.(memory|runtime)\./;
import type { ReplyBody } from '../../shared/protocol.ts';
import type { StatSample } from '../../shared/stats/index.ts';
import type { MemoryConfig } from '../config/config.ts';
import { MemorySeries, type MemoryPoint } from './history.ts';
import { detectLeak, type LeakFinding } from './leak-detect.ts';
import { MemoryLimits } from './limits.ts';
import type { MemoryProbe } from './proc.ts';
import { generationReport, type GenerationMemory, type MemoryFlag } from './report.ts';

export type { GenerationMemory, MemoryFlag } from './report.ts';
import type { Timers } from '../os/os.ts';

/** What the monitor needs to know of a live generation. */
export interface WatchedGeneration {
  id: number;
  pid: number;
  state: string;
  connections: number | null;
  sdk: boolean;
}

export interface MemoryActions {
  live(): WatchedGeneration[];
  /** Child gauges, from the shared segment. */
  snapshot(filter: RegExp): StatSample[];
  /** Sends `release-memory` and resolves with the ack. */
  release(generation: number): Promise<ReplyBody>;
  /** Replaces the active generation (the supervisor's reload); resolves with the new one's number. */
  replace(reason: string): Promise<number>;
}

const MiB = 1024 * 1024;
/** How often the limit watch reads each generation's RSS between samples (ms). */
export const LIMIT_WATCH_MS = 250;
/** Exited generations whose series are kept at most. */
const EXITED_KEPT = 32;

export class MemoryMonitor {
  private readonly config: MemoryConfig;
  private readonly timers: Timers;
  private readonly probe: MemoryProbe;
  private readonly actions: MemoryActions;
  private readonly log: Logger;
  private readonly events: EventSink;
  private readonly series = new Map<number, MemorySeries>();
  private readonly growing = new Set<number>();
  private readonly findings = new Map<number, LeakFinding>();
  private readonly limits: MemoryLimits;
  private limitTimer: unknown;
  private readonly released = new Map<number, number>();
  private timer: unknown;
  private stopped = false;

  /** @param events where findings, limits and replacements are published. @default NoEvents */
  constructor(config: MemoryConfig, timers: Timers, probe: MemoryProbe, actions: MemoryActions, log: Logger, events: EventSink = NoEvents) {
    this.events = events;
    this.config = config;
    this.timers = timers;
    this.probe = probe;
    this.actions = actions;
    this.log = log.child({ component: 'memory' });
    this.limits = new MemoryLimits(config, timers, actions, this.log, events, (generation, kind, detail) => this.mark(generation, kind, detail));
  }

  start(): void {
    if (this.config.interval <= 0) return;
    this.schedule();
    if ((this.config.hardLimit?.rss !== undefined || this.config.softLimit?.rss !== undefined) && this.probe.rss) this.scheduleLimitWatch();
  }

  stop(): void {
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
    this.timers.clearTimeout(this.limitTimer);
  }

  /**
   * Between samples, RSS alone from statm every LIMIT_WATCH_MS: a fast leak meets the limit
   * within a quarter second of crossing it, not up to an interval later.
   */
  private scheduleLimitWatch(): void {
    if (this.stopped) return;
    this.limitTimer = this.timers.setTimeout(() => {
      this.limitWatch();
      this.scheduleLimitWatch();
    }, Math.min(LIMIT_WATCH_MS, this.config.interval));
  }

  /** One round of the limit watch (public for tests). */
  limitWatch(): void {
    for (const g of this.actions.live()) {
      const rss = this.probe.rss?.(g.pid);
      if (rss === undefined) continue;
      const point: MemoryPoint = { t: this.timers.now(), rss };
      if (this.limits.crossed(point)) {
        this.track(g.id, g.pid);
        this.limits.watch(g, point);
      }
    }
  }

  /** Starts a generation's series (at launch, so events before its first sample are kept). */
  track(generation: number, pid: number): void {
    if (this.series.has(generation)) return;
    this.series.set(generation, new MemorySeries(generation, pid, Math.ceil(this.config.history / this.config.interval)));
    // Exited series are kept for `history`, but never more than EXITED_KEPT of them (fast reload loops).
    const exited = [...this.series.values()].filter((s) => s.exitedAt !== undefined);
    for (const s of exited.slice(0, Math.max(0, exited.length - EXITED_KEPT))) this.series.delete(s.generation);
  }

  /** Marks an event (reload, crash, exit) on a generation's series, for plots. */
  mark(generation: number, kind: string, detail?: string): void {
    this.series.get(generation)?.mark(this.timers.now(), kind, detail);
  }

  /** A generation released `bytes` of RSS (soft limit or on request): counted in `/memory`'s `released`. */
  noteReleased(generation: number, bytes: number): void {
    this.released.set(generation, (this.released.get(generation) ?? 0) + bytes);
  }

  /** The generation exited: its series is kept for `history`. */
  exited(generation: number): void {
    const s = this.series.get(generation);
    if (s) {
      s.exitedAt = this.timers.now();
      s.mark(s.exitedAt, 'exit');
    }
    this.growing.delete(generation);
    this.findings.delete(generation);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.timers.setTimeout(() => {
      this.tick();
      this.schedule();
    }, this.config.interval);
  }

  /** One sampling round (public for tests). */
  tick(): void {
    const now = this.timers.now();
    const children = this.readChildren(now);
    for (const g of this.actions.live()) {
      this.track(g.id, g.pid);
      const s = this.series.get(g.id)!;
      // The supervisor's own reading of RSS wins over the child's (it is fresh when the child is blocked).
      const point: MemoryPoint = { t: now, ...(children.get(g.id) ?? {}), ...(this.probe.read(g.pid) ?? {}) };
      if (g.connections !== null) point.connections = g.connections;
      s.push(point);
      this.watchGrowth(g, s);
      this.limits.watch(g, point);
    }
    for (const [id, s] of this.series) {
      if (s.exitedAt !== undefined && now - s.exitedAt > this.config.history) this.series.delete(id);
    }
  }

  /** Child figures by generation, only those sampled recently (a blocked child's are stale). */
  private readChildren(now: number): Map<number, Partial<ChildMemory> & Partial<RuntimeHealth>> {
    const byGen = new Map<number, Partial<ChildMemory> & Partial<RuntimeHealth>>();
    const samples = this.actions.snapshot(CHILD_FILTER);
    const fresh = (m: { generation?: number; sampledAt?: number }): m is { generation: number; sampledAt: number } =>
      !!m.generation && m.sampledAt !== undefined && now - m.sampledAt <= 3 * this.config.interval + 1000;
    for (const m of childFiguresByWriter(samples).values()) {
      if (!fresh(m)) continue;
      const { sampledAt: _sampled, generation, ...figures } = m;
      byGen.set(generation, figures);
    }
    for (const h of runtimeByWriter(samples).values()) {
      if (!fresh(h)) continue;
      const { sampledAt: _sampled, generation, ...figures } = h;
      byGen.set(generation, { ...byGen.get(generation), ...figures });
    }
    return byGen;
  }

  private watchGrowth(g: WatchedGeneration, s: MemorySeries): void {
    const { minSlope, minGrowth, minR2, loadTolerance } = this.config.growth;
    const finding = detectLeak(s.window(this.config.window), { minSlope, minGrowth, minR2, loadTolerance, window: this.config.window });
    this.findings.set(g.id, finding);
    const growing = finding.growing;
    if (growing === this.growing.has(g.id)) return;
    const lead = finding.live.find((t) => t.growing);
    const slope = lead ? lead.slopePerMin / MiB : 0;
    if (growing) {
      this.growing.add(g.id);
      s.mark(this.timers.now(), 'growing', finding.message);
      announce(
        this.events,
        this.log,
        'warn',
        {
          type: 'memory-growing',
          generation: g.id,
          ...(lead ? { figure: lead.figure } : {}),
          figures: finding.live.filter((t) => t.growing).map((t) => t.figure),
          slopeMiBPerMin: round(slope),
          message: finding.message,
        },
        `generation ${g.id} is ${finding.message}`,
        { rss: s.last()?.rss, finding: finding.message },
      );
    } else {
      this.growing.delete(g.id);
      announce(this.events, this.log, 'info', { type: 'memory-steady', generation: g.id, message: finding.message }, `generation ${g.id} is no longer growing: ${finding.message}`, { finding: finding.message });
    }
  }

  /** Per generation (live and recently exited), oldest first. */
  report(): GenerationMemory[] {
    return [...this.series.values()].map((s) =>
      generationReport(s, this.config.window, this.growing.has(s.generation), this.released.get(s.generation) ?? 0, this.findings.get(s.generation)),
    );
  }

  /** The full series, per generation. */
  seriesOf(generation?: number): { generation: number; pid: number; exitedAt?: number; events: MemorySeries['events']; points: MemoryPoint[] }[] {
    return [...this.series.values()]
      .filter((s) => generation === undefined || s.generation === generation)
      .map((s) => ({
        generation: s.generation,
        pid: s.pid,
        limits: { soft: this.config.softLimit ?? null, hard: this.config.hardLimit ?? null },
        ...(s.exitedAt !== undefined ? { exitedAt: s.exitedAt } : {}),
        events: s.events,
        points: s.points(),
      }));
  }

  /** V8 heap size (committed) of `generation` at its last sample, bytes; undefined when unknown. */
  heapOf(generation: number): number | undefined {
    return this.series.get(generation)?.points().findLast((p) => p.heapTotal !== undefined)?.heapTotal;
  }

  /** What `baton status` shows of `generation`. */
  flag(generation: number): MemoryFlag | undefined {
    const s = this.series.get(generation);
    if (!s) return undefined;
    const rss = s.summary('rss', this.config.window);
    const finding = this.findings.get(generation);
    const lead = finding?.live.find((t) => t.growing);
    return {
      rss: rss?.now ?? null,
      slopeMiBPerMin: lead ? round(lead.slopePerMin / MiB) : rss ? round(rss.slopePerMin / MiB) : null,
      growing: this.growing.has(generation),
      ...(finding ? { finding: finding.message } : {}),
      ...runtimeOf(s.last()),
    };
  }
}

/** Event-loop delay and utilization of a point, for `baton status` (absent when the child reports none). */
function runtimeOf(p: MemoryPoint | undefined): { loopDelayP50?: number; loopDelayP99?: number; loopUtilization?: number; cpuMs?: number; heapUsed?: number } {
  if (!p) return {};
  const out: Record<string, number> = {};
  for (const k of ['loopDelayP50', 'loopDelayP99', 'loopUtilization', 'cpuMs', 'heapUsed'] as const) {
    const v = p[k];
    if (typeof v === 'number' && v >= 0) out[k] = Math.round(v * 1000) / 1000;
  }
  return out;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
