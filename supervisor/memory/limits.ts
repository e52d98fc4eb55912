/**
 * The memory limits of the monitor (monitor.ts): over the soft limit, a generation is asked to
 * release memory (once per window); the active one over the hard limit is replaced with zero
 * downtime through the supervisor's reload, at most once per `replace-cooldown`, and said so
 * when the cooldown holds a replacement back.
 */
import type { Logger } from 'pino';
import { announce, type EventSink, type LimitCrossed } from '../core/events.ts';
import type { MemoryConfig, MemoryLimit } from '../config/config.ts';
import { formatDuration } from '../../shared/units.ts';
import type { Timers } from '../os/os.ts';
import type { MemoryPoint } from './history.ts';
import type { MemoryActions, WatchedGeneration } from './monitor.ts';

const MiB = 1024 * 1024;

export class MemoryLimits {
  private readonly config: MemoryConfig;
  private readonly timers: Timers;
  private readonly actions: MemoryActions;
  private readonly log: Logger;
  private readonly events: EventSink;
  private readonly mark: (generation: number, kind: string, detail?: string) => void;
  private readonly softAskedAt = new Map<number, number>();
  private readonly overHardLogged = new Set<number>();
  private lastReplaceAt = -Infinity;
  private replacing = false;

  /** @param mark notes a limit on the generation's series (for plots). */
  constructor(config: MemoryConfig, timers: Timers, actions: MemoryActions, log: Logger, events: EventSink, mark: (generation: number, kind: string, detail?: string) => void) {
    this.config = config;
    this.timers = timers;
    this.actions = actions;
    this.log = log;
    this.events = events;
    this.mark = mark;
  }

  /** Whether `p` is over either limit. */
  crossed(p: MemoryPoint): boolean {
    return over(this.config.hardLimit, p) !== undefined || over(this.config.softLimit, p) !== undefined;
  }

  /** Acts on `p`, the latest reading of `g`: the soft limit once per window, the hard limit for the active generation. */
  watch(g: WatchedGeneration, p: MemoryPoint): void {
    if (g.state === 'exited' || g.state === 'draining') return;
    const soft = over(this.config.softLimit, p);
    const hard = over(this.config.hardLimit, p);
    const now = this.timers.now();
    if (hard && g.state === 'active') return this.hard(g, hard);
    if (soft && g.sdk && now - (this.softAskedAt.get(g.id) ?? -Infinity) >= this.config.window) {
      this.softAskedAt.set(g.id, now);
      this.soft(g, soft);
    }
  }

  private soft(g: WatchedGeneration, crossed: LimitCrossed): void {
    const { why } = crossed;
    announce(this.events, this.log, 'info', { type: 'memory-limit', generation: g.id, limit: 'soft', ...crossed }, `generation ${g.id} is over the soft limit (${why}): asking it to release memory`);
    this.mark(g.id, 'soft-limit', why);
    this.actions.release(g.id).then(
      (reply) => {
        if (!reply.ok) {
          this.log.warn({ generation: g.id, error: reply.error }, `generation ${g.id} could not release memory: ${reply.error.message}`);
          return;
        }
        const released = Number(reply.released ?? 0);
        const [rssBefore, rssAfter] = [Number(reply.rssBefore), Number(reply.rssAfter)];
        announce(
          this.events,
          this.log,
          'info',
          { type: 'memory-released', generation: g.id, released, rssBefore, rssAfter, trimmed: reply.trimmed === true },
          `generation ${g.id} released ${mib(released)} (RSS ${mib(Number(reply.rssBefore))} → ${mib(Number(reply.rssAfter))})`,
          { ...reply, released },
        );
      },
      (err: Error) => this.log.warn({ generation: g.id, err }, `generation ${g.id} did not answer release-memory: ${err.message}`),
    );
  }

  private hard(g: WatchedGeneration, crossed: LimitCrossed): void {
    const { why } = crossed;
    const now = this.timers.now();
    if (this.replacing) return;
    if (now - this.lastReplaceAt < this.config.replaceCooldown) {
      if (this.overHardLogged.has(g.id)) return;
      this.overHardLogged.add(g.id);
      const sinceReplaceMs = now - this.lastReplaceAt;
      const cooldownMs = this.config.replaceCooldown;
      announce(
        this.events,
        this.log,
        'error',
        { type: 'memory-cooldown', generation: g.id, sinceReplaceMs, cooldownMs, ...crossed },
        `generation ${g.id} is over the hard limit (${why}) but a generation was already replaced for memory ` +
          `${formatDuration(sinceReplaceMs)} ago: not replacing again within ${formatDuration(cooldownMs)}; ` +
          'this release may be over the limit from the start — raise memory.hard-limit or fix the release',
        { code: 'ERR_MEMORY_LIMIT' },
      );
      return;
    }
    this.replacing = true;
    this.lastReplaceAt = now;
    this.mark(g.id, 'hard-limit', why);
    announce(this.events, this.log, 'warn', { type: 'memory-limit', generation: g.id, limit: 'hard', ...crossed }, `generation ${g.id} is over the hard limit (${why}): starting a replacement and draining it`);
    this.actions.replace(`generation ${g.id} over the memory hard limit`).then(
      (next) => {
        this.replacing = false;
        announce(this.events, this.log, 'info', { type: 'memory-replaced', generation: g.id, replacement: next }, `generation ${g.id} replaced by generation ${next} (memory hard limit)`);
      },
      (err: Error) => {
        this.replacing = false;
        this.log.error({ generation: g.id, err }, `memory replacement of generation ${g.id} failed: ${err.message}`);
      },
    );
  }
}

/** How a point is over `limit`, or undefined. */
function over(limit: MemoryLimit | undefined, p: MemoryPoint): LimitCrossed | undefined {
  if (!limit) return undefined;
  if (limit.rss !== undefined && p.rss !== undefined && p.rss > limit.rss) return { figure: 'rss', bytes: p.rss, limitBytes: limit.rss, why: `RSS ${mib(p.rss)} > ${mib(limit.rss)}` };
  if (limit.heap !== undefined && p.heapUsed !== undefined && p.heapUsed > limit.heap) {
    return { figure: 'heap', bytes: p.heapUsed, limitBytes: limit.heap, why: `heap ${mib(p.heapUsed)} > ${mib(limit.heap)}` };
  }
  return undefined;
}

function mib(bytes: number): string {
  return `${Math.round((bytes / MiB) * 100) / 100} MiB`;
}
