import { describe, expect, it } from 'vitest';
import { evaluate, type CanaryConfig } from '../../../supervisor/canary/evaluate.ts';
import { figuresOf, quantile, since, type Figures } from '../../../supervisor/canary/figures.ts';
import * as v from 'valibot';
import { canarySchema, toCanaryConfig } from '../../../supervisor/canary/config.ts';
import type { StatSample } from '../../../shared/stats/index.ts';

const BOUNDS = [1, 2, 5, 10, 20, 50, 100];
const config: CanaryConfig = { window: 30_000, maxErrorRate: 0.01, maxP99Ratio: 2, p99Floor: 5, minRequests: 100 };

/** `n` requests, `errors` of them 5xx, every latency in the bucket ending at `ms`. */
function figures(n: number, errors: number, ms: number): Figures {
  const buckets = new Array<number>(BOUNDS.length + 1).fill(0);
  buckets[BOUNDS.indexOf(ms)] = n;
  return { requests: n, errors, bounds: BOUNDS, buckets };
}

describe('evaluate', () => {
  it('rolls back on a 5xx rate above the threshold once min-requests have been answered, with the figures in the reason', () => {
    expect(evaluate(figures(832, 103, 2), figures(5000, 0, 2), config, false)).toEqual({
      kind: 'breach',
      reason: '5xx 12.4% > 1% over 832 requests',
    });
  });

  it('waits below min-requests, however bad the share, and passes such a window at its end', () => {
    expect(evaluate(figures(99, 99, 2), figures(5000, 0, 2), config, false).kind).toBe('wait');
    expect(evaluate(figures(99, 99, 2), figures(5000, 0, 2), config, true)).toMatchObject({ kind: 'pass', reason: expect.stringContaining('only 99 requests') });
  });

  it('does not blame a release for the error rate its predecessor had too', () => {
    expect(evaluate(figures(1000, 40, 2), figures(5000, 250, 2), config, false).kind).toBe('wait');
    expect(evaluate(figures(1000, 80, 2), figures(5000, 250, 2), config, false)).toMatchObject({ kind: 'breach', reason: expect.stringContaining("previous generation's") });
  });

  it('rolls back a p99 above max-p99-ratio × the previous p99, but not a rise within the noise floor', () => {
    // Judged over the whole window only: a generation's first requests run cold.
    expect(evaluate(figures(500, 0, 50), figures(5000, 0, 10), config, false).kind).toBe('wait');
    expect(evaluate(figures(500, 0, 50), figures(5000, 0, 10), config, true)).toMatchObject({ kind: 'breach', reason: expect.stringMatching(/^p99 \d+ms > 2 × \d+(\.\d)?ms over 500 requests$/) });
    // 1 ms → 5 ms is 5× but only 4 ms: under the 5 ms floor.
    expect(evaluate(figures(500, 0, 5), figures(5000, 0, 1), config, true).kind).toBe('pass');
    expect(evaluate(figures(500, 0, 10), figures(5000, 0, 10), config, true).kind).toBe('pass');
  });

  it('judges no p99 against a previous generation that answered too few requests', () => {
    expect(evaluate(figures(500, 0, 100), figures(10, 0, 1), config, true).kind).toBe('pass');
  });
});

describe('figures', () => {
  it('interpolates a quantile inside its bucket and reports the +Inf bucket as the last bound', () => {
    expect(quantile({ bounds: [10, 20], buckets: [0, 100, 0] }, 0.5)).toBe(15);
    expect(quantile({ bounds: [10, 20], buckets: [99, 0, 1] }, 0.999)).toBe(20);
    expect(quantile({ bounds: [10], buckets: [0, 0] }, 0.99)).toBeNaN();
  });

  it("reads one generation's requests, 5xx and latency out of a snapshot, summing workers", () => {
    const samples: StatSample[] = [
      { name: 'baton.http.requests', kind: 'counter', labels: { generation: '2', code_class: '2xx', worker: '1' }, value: 90 },
      { name: 'baton.http.requests', kind: 'counter', labels: { generation: '2', code_class: '5xx', worker: '1' }, value: 5 },
      { name: 'baton.http.requests', kind: 'counter', labels: { generation: '2', code_class: '5xx', worker: '2' }, value: 5 },
      { name: 'baton.http.requests', kind: 'counter', labels: { generation: '3', code_class: '5xx' }, value: 1000 },
      { name: 'baton.http.request_ms', kind: 'histogram', labels: { generation: '2', worker: '1' }, bounds: [1, 2], buckets: [1, 2, 3], sum: 0, count: 6 },
      { name: 'baton.http.request_ms', kind: 'histogram', labels: { generation: '2', worker: '2' }, bounds: [1, 2], buckets: [1, 1, 1], sum: 0, count: 3 },
    ];
    expect(figuresOf(samples, 2)).toEqual({ requests: 100, errors: 10, bounds: [1, 2], buckets: [2, 3, 4] });
    const later = { requests: 150, errors: 10, bounds: [1, 2], buckets: [2, 3, 54] };
    expect(since(figuresOf(samples, 2), later)).toEqual({ requests: 50, errors: 0, bounds: [1, 2], buckets: [0, 0, 50] });
  });
});

describe('canary config', () => {
  it('takes a percentage or a fraction and fills in the defaults', () => {
    expect(toCanaryConfig(v.parse(canarySchema, { window: '3s', 'max-error-rate': '1%', 'max-p99-ratio': 2, 'min-requests': 100 }))).toEqual({
      window: 3000,
      maxErrorRate: 0.01,
      maxP99Ratio: 2,
      p99Floor: 20,
      minRequests: 100,
    });
    expect(toCanaryConfig(v.parse(canarySchema, {})).window).toBe(30_000);
    expect(toCanaryConfig(v.parse(canarySchema, { 'max-error-rate': 0.05 })).maxErrorRate).toBe(0.05);
  });

  it('refuses a share over 100%, a ratio below 1 and an unknown key', () => {
    expect(v.safeParse(canarySchema, { 'max-error-rate': '150%' }).success).toBe(false);
    expect(v.safeParse(canarySchema, { 'max-p99-ratio': 0.5 }).success).toBe(false);
    expect(v.safeParse(canarySchema, { windw: '3s' }).success).toBe(false);
  });
});
