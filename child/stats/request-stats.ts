import type { Counter, Histogram, Stats } from '../../shared/stats/index.ts';

/** The counter of answered requests, labelled `generation`, `code_class` (`2xx`…`5xx`) and `worker` where workers exist. */
export const REQUESTS_STAT = 'baton.http.requests';
/** The latency histogram (milliseconds from request to the end of the response), labelled `generation` (and `worker`). */
export const LATENCY_STAT = 'baton.http.request_ms';
/**
 * Latency bucket bounds in ms, about ×1.25 apart: a p99 read from the buckets is within a quarter
 * of the real one, fine enough for a canary's "2× slower" test (×1.5 buckets made a real 3× read as 2×).
 */
export const LATENCY_BOUNDS: readonly number[] = [
  0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600, 800,
  1000, 1200, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000, 10000, 15000, 20000, 30000,
];

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/**
 * Counts every HTTP response of a generation by status class and records its latency, in the
 * shared segment, with no code in the app: the SDK's drain controller (serve(), and so the preload)
 * calls `record` for each response. The canary window compares these figures between generations.
 */
export class RequestStats {
  private readonly open: () => Stats;
  private readonly labels: Record<string, string>;
  private counters: Counter[] | undefined;
  private latency: Histogram | undefined;
  private failed = false;

  /** `open` returns the process's stats (called once, at the first request); `labels` are added to every stat. */
  constructor(open: () => Stats, labels: Record<string, string>) {
    this.open = open;
    this.labels = labels;
  }

  /**
   * Records one answered request by status code and latency: called once a response has been
   * sent, or its connection closed under it (counted by the status it was given).
   */
  record(status: number, ms: number): void {
    if (this.failed || (!this.counters && !this.init())) return;
    const index = Math.floor(status / 100) - 1;
    this.counters![index >= 0 && index < CLASSES.length ? index : CLASSES.length - 1]!.inc();
    this.latency!.record(ms);
  }

  private init(): boolean {
    try {
      const stats = this.open();
      this.counters = CLASSES.map((c) => stats.counter(REQUESTS_STAT, { ...this.labels, code_class: c }));
      this.latency = stats.histogram(LATENCY_STAT, LATENCY_BOUNDS, this.labels);
      return true;
    } catch {
      // No segment (a damaged one, a full arena): the app keeps serving, uncounted.
      this.failed = true;
      return false;
    }
  }
}

/** The labels of this process's request stats: its generation, and its worker where `BATON_WORKER` says so. */
export function requestLabels(generation: number, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return { generation: String(generation), ...(env.BATON_WORKER ? { worker: env.BATON_WORKER } : {}) };
}
