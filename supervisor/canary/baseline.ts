import { figuresOf, REQUEST_STATS_FILTER, since, type Figures } from './figures.ts';
import type { CanaryDeps } from './canary.ts';
import type { CanaryGeneration } from './generation-port.ts';

/** How often the serving generation's figures are sampled (at most; a short window samples faster). */
const SAMPLE_MS = 1_000;

/**
 * The serving generation's recent figures, the canary's baseline: sampled every second, the
 * first sample a second after it began serving (its cold start stays out), those older than a
 * window dropped. A whole-life baseline would carry the previous release's own start-up tail.
 */
export class BaselineSampler {
  private readonly deps: Pick<CanaryDeps, 'os' | 'snapshot'>;
  private generation: CanaryGeneration | undefined;
  private samples: { at: number; figures: Figures }[] = [];
  private timer: unknown;
  private span = 0;

  constructor(deps: Pick<CanaryDeps, 'os' | 'snapshot'>) {
    this.deps = deps;
  }

  /** Starts sampling `g` (the generation now serving) over spans of `windowMs`. */
  watch(g: CanaryGeneration, windowMs: number): void {
    this.deps.os.clearTimeout(this.timer);
    this.generation = g;
    this.samples = [];
    this.span = windowMs;
    this.schedule();
  }

  /**
   * `g`'s figures over the last window before `before` (the new generation's start: its start-up
   * competes for the CPU and would inflate the old one's latency); its life up to the one sample
   * before then, or its whole life when there is none.
   */
  baseline(g: CanaryGeneration, before: number, snapshot = this.deps.snapshot(REQUEST_STATS_FILTER)): Figures {
    const now = figuresOf(snapshot, g.id);
    if (g !== this.generation) return now;
    const prior = this.samples.filter((s) => s.at <= before);
    const first = prior[0];
    const last = prior[prior.length - 1];
    if (!first || !last) return now;
    // One sample only: the generation's life up to it, cold start included, the reload's contention not.
    return first === last ? first.figures : since(first.figures, last.figures);
  }

  private schedule(): void {
    this.timer = this.deps.os.setTimeout(() => this.sample(), Math.max(20, Math.min(SAMPLE_MS, this.span / 3)));
  }

  private sample(): void {
    const g = this.generation;
    if (!g || g.state !== 'active') return;
    const at = this.deps.os.now();
    this.samples.push({ at, figures: figuresOf(this.deps.snapshot(REQUEST_STATS_FILTER), g.id) });
    // Keep one sample older than the span, so the baseline always covers a full window once there is one.
    while (this.samples.length > 1 && this.samples[1]!.at <= at - this.span) this.samples.shift();
    this.schedule();
  }
}
