import type { Logger } from 'pino';
import { announce, NoEvents, type EventSink } from '../core/events.ts';
import { everyWorker, type CanaryGeneration } from './generation-port.ts';

interface BoundDeps {
  os: { setTimeout(fn: () => void, ms: number): unknown };
  log: Logger;
  events?: EventSink;
  live(): CanaryGeneration[];
  rss?(generation: CanaryGeneration): number | undefined;
}

/** What bounds the draining generations: their number, and optionally the RSS they hold together. */
interface Bounds {
  maxDraining: number;
  drainingMemoryBudget?: number;
  shutdownTimeout: number;
}

/**
 * `max-draining`: before more generations start draining than the bound allows, the oldest
 * draining ones are hurried — idle connections closed now, busy ones after one more response —
 * and killed at their shutdown timeout, so a burst of reloads cannot pile up processes.
 * `draining-memory-budget` applies the same rule to the RSS the draining generations hold.
 */
export class DrainingBound {
  private readonly deps: BoundDeps;
  private readonly hurried = new Set<CanaryGeneration>();

  constructor(deps: BoundDeps) {
    this.deps = deps;
  }

  /** The generations hurried and not yet exited. */
  get hurrying(): number[] {
    return [...this.hurried].filter((g) => g.state !== 'exited').map((g) => g.id);
  }

  /** Drains `generations` (the reason given), first hurrying the oldest draining ones beyond `maxDraining`. */
  retire(generations: CanaryGeneration[], reason: string, options: Bounds): void {
    for (const h of [...this.hurried]) if (h.state === 'exited') this.hurried.delete(h);
    for (const g of generations) {
      if (g.state === 'draining' || g.state === 'exited') continue;
      const draining = this.deps
        .live()
        .filter((d) => d.state === 'draining' && !this.hurried.has(d))
        .sort((a, b) => a.id - b.id);
      // Hurried generations are on their way out within the shutdown timeout; they are not counted twice.
      while (draining.length >= options.maxDraining) this.hurry(draining.shift()!, options, `more than ${options.maxDraining} generations would drain`);
      const budget = options.drainingMemoryBudget;
      if (budget !== undefined) {
        const rss = (d: CanaryGeneration): number => this.deps.rss?.(d) ?? 0;
        let held = rss(g) + draining.reduce((n, d) => n + rss(d), 0);
        while (held > budget && draining.length > 0) {
          const oldest = draining.shift()!;
          this.hurry(oldest, options, `the draining generations would hold ${mib(held)} of RSS, over draining-memory-budget ${mib(budget)}`);
          held -= rss(oldest);
        }
      }
      g.drain(reason);
    }
  }

  private hurry(g: CanaryGeneration, options: Bounds, why: string): void {
    this.hurried.add(g);
    const report = (cut: number | null): void => {
      announce(
        this.deps.events ?? NoEvents,
        this.deps.log,
        'warn',
        { type: 'drain-hurried', generation: g.id, cut, why },
        `${why}: hurrying generation ${g.id}, cutting ${cut === null ? 'an unknown number of' : cut} connection${cut === 1 ? '' : 's'}`,
        { maxDraining: options.maxDraining },
      );
    };
    if (g.sdk) {
      void everyWorker(g, { type: 'hurry' }, 2_000).then((replies) =>
        report(replies.every((r) => r.ok) ? replies.reduce((n, r) => n + Number((r.ok && r.cut) || 0), 0) : g.connections),
      );
    } else report(g.connections);
    this.deps.os.setTimeout(() => {
      if (g.state === 'exited') return;
      this.deps.log.warn({ event: 'drain-hurried-kill', generation: g.id, connections: g.connections }, `hurried generation ${g.id} is killed at its shutdown timeout`);
      g.kill();
    }, options.shutdownTimeout);
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
