import type { Logger } from 'pino';
import { announce, type EventSink } from '../core/events.ts';
import { everyWorker, type CanaryGeneration } from './generation-port.ts';

interface BoundDeps {
  os: { setTimeout(fn: () => void, ms: number): unknown };
  log: Logger;
  events: EventSink;
  live(): CanaryGeneration[];
}

/**
 * `max-draining`: before more generations start draining than the bound allows, the oldest
 * draining ones are hurried — idle connections closed now, busy ones after one more response —
 * and killed at their shutdown timeout, so a burst of reloads cannot pile up processes.
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
  retire(generations: CanaryGeneration[], reason: string, options: { maxDraining: number; shutdownTimeout: number }): void {
    for (const h of [...this.hurried]) if (h.state === 'exited') this.hurried.delete(h);
    for (const g of generations) {
      if (g.state === 'draining' || g.state === 'exited') continue;
      const draining = this.deps
        .live()
        .filter((d) => d.state === 'draining' && !this.hurried.has(d))
        .sort((a, b) => a.id - b.id);
      // Hurried generations are on their way out within the shutdown timeout; they are not counted twice.
      while (draining.length >= options.maxDraining) this.hurry(draining.shift()!, options);
      g.drain(reason);
    }
  }

  private hurry(g: CanaryGeneration, options: { maxDraining: number; shutdownTimeout: number }): void {
    this.hurried.add(g);
    const report = (cut: number | null): void => {
      announce(
        this.deps.events,
        this.deps.log,
        'warn',
        { type: 'drain-hurried', generation: g.id, cut, maxDraining: options.maxDraining },
        `more than ${options.maxDraining} generations would drain: hurrying generation ${g.id}, cutting ${cut === null ? 'an unknown number of' : cut} connection${cut === 1 ? '' : 's'}`,
      );
    };
    if (g.sdk) {
      void everyWorker(g, { type: 'hurry' }, 2_000).then((replies) =>
        report(replies.every((r) => r.ok) ? replies.reduce((n, r) => n + Number((r.ok && r.cut) || 0), 0) : g.connections),
      );
    } else report(g.connections);
    this.deps.os.setTimeout(() => {
      if (g.state === 'exited') return;
      const kill = { type: 'drain-hurried-kill', generation: g.id, connections: g.connections } as const;
      announce(this.deps.events, this.deps.log, 'warn', kill, `hurried generation ${g.id} is killed at its shutdown timeout`);
      g.kill();
    }, options.shutdownTimeout);
  }
}
