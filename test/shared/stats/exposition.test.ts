// JSON and Prometheus text exposition of real snapshots, checked line by line and by a real
// parser of the format (parse-prometheus-text-format, a devDependency).
import { describe, expect, it } from 'vitest';
import { createSegment, escapeLabelValue, formatValue, toJSON, toPrometheus, type StatSample } from '../../../shared/stats/index.ts';
import { instanceName, tempDir } from './helpers.ts';

function sampleSnapshot(): StatSample[] {
  const owner = createSegment({ dir: tempDir(), instance: instanceName() });
  owner.counter('http.ingress.downstream_rq_total', { code: '200' }).inc(1027);
  owner.counter('http.ingress.downstream_rq_total', { code: '500', path: 'C:\\DIR\\"FILE"\nnext' }).inc(3);
  owner.gauge('http.ingress.downstream_cx_active').set(-2.5);
  owner.gauge('weird').set(Infinity);
  const h = owner.histogram('http.rq_time_seconds', [0.05, 0.1, 1]);
  for (const v of [0.01, 0.05, 0.07, 0.5, 3]) h.record(v);
  const labelled = owner.histogram('db.query_seconds', [0.5], { db: 'main' });
  labelled.record(0.2);
  labelled.record(0.9);
  const snapshot = owner.snapshot(/^(?!baton\.)/);
  owner.destroy();
  return snapshot;
}

const EXPECTED = `# HELP baton_http_downstream_rq_total HTTP requests the listener received.
# TYPE baton_http_downstream_rq_total counter
baton_http_downstream_rq_total{listener="ingress",code="200"} 1027
baton_http_downstream_rq_total{listener="ingress",code="500",path="C:\\\\DIR\\\\\\"FILE\\"\\nnext"} 3
# HELP baton_http_downstream_cx_active Gauge http.ingress.downstream_cx_active (no help text registered).
# TYPE baton_http_downstream_cx_active gauge
baton_http_downstream_cx_active{listener="ingress"} -2.5
# HELP weird Gauge weird (no help text registered).
# TYPE weird gauge
weird +Inf
# HELP http_rq_time_seconds Histogram http.rq_time_seconds (no help text registered).
# TYPE http_rq_time_seconds histogram
http_rq_time_seconds_bucket{le="0.05"} 2
http_rq_time_seconds_bucket{le="0.1"} 3
http_rq_time_seconds_bucket{le="1"} 4
http_rq_time_seconds_bucket{le="+Inf"} 5
http_rq_time_seconds_sum 3.63
http_rq_time_seconds_count 5
# HELP db_query_seconds Histogram db.query_seconds (no help text registered).
# TYPE db_query_seconds histogram
db_query_seconds_bucket{db="main",le="0.5"} 1
db_query_seconds_bucket{db="main",le="+Inf"} 2
db_query_seconds_sum{db="main"} 1.1
db_query_seconds_count{db="main"} 2
`;

describe('stats exposition', () => {
  it('writes Prometheus text format 0.0.4: families, escaped labels, cumulative buckets', () => {
    expect(toPrometheus(sampleSnapshot())).toBe(EXPECTED);
    expect(toPrometheus([])).toBe('');
  });

  it('escapes backslash, double quote and line feed in label values, and formats special floats', () => {
    expect(escapeLabelValue('a\\b"c"\nd')).toBe('a\\\\b\\"c\\"\\nd');
    expect([Infinity, -Infinity, Number.NaN, 0.1, 1e21, -0].map(formatValue)).toEqual(['+Inf', '-Inf', 'NaN', '0.1', '1e+21', '0']);
  });

  it('is read back by a Prometheus text-format parser', async () => {
    const name = 'parse-prometheus-text-format';
    let module: { default?: unknown };
    try {
      module = (await import(name)) as { default?: unknown };
    } catch (cause) {
      throw new Error(`devDependency ${name} is missing: npm install --save-dev ${name}`, { cause });
    }
    const fromDefault = (module.default as { default?: unknown } | undefined)?.default ?? module.default ?? module;
    const parse = fromDefault as (text: string) => unknown;
    // The parser merges labelled histograms into one, so the labelled one is checked above only.
    const text = toPrometheus(sampleSnapshot().filter((s) => s.name !== 'db.query_seconds'));
    expect(parse(text)).toEqual([
      {
        name: 'baton_http_downstream_rq_total',
        help: 'HTTP requests the listener received.',
        type: 'COUNTER',
        metrics: [
          { value: '1027', labels: { listener: 'ingress', code: '200' } },
          { value: '3', labels: { listener: 'ingress', code: '500', path: 'C:\\DIR\\"FILE"\nnext' } },
        ],
      },
      {
        name: 'baton_http_downstream_cx_active',
        help: 'Gauge http.ingress.downstream_cx_active (no help text registered).',
        type: 'GAUGE',
        metrics: [{ value: '-2.5', labels: { listener: 'ingress' } }],
      },
      { name: 'weird', help: 'Gauge weird (no help text registered).', type: 'GAUGE', metrics: [{ value: '+Inf' }] },
      {
        name: 'http_rq_time_seconds',
        help: 'Histogram http.rq_time_seconds (no help text registered).',
        type: 'HISTOGRAM',
        metrics: [{ buckets: { '0.05': '2', '0.1': '3', '1': '4', '+Inf': '5' }, sum: '3.63', count: '5' }],
      },
    ]);
  });

  it('writes JSON with labels, non-cumulative buckets and non-finite numbers as strings', () => {
    const parsed = JSON.parse(toJSON(sampleSnapshot())) as unknown;
    expect(parsed).toEqual({
      stats: [
        { name: 'http.ingress.downstream_rq_total', labels: { code: '200' }, kind: 'counter', value: 1027 },
        { name: 'http.ingress.downstream_rq_total', labels: { code: '500', path: 'C:\\DIR\\"FILE"\nnext' }, kind: 'counter', value: 3 },
        { name: 'http.ingress.downstream_cx_active', labels: {}, kind: 'gauge', value: -2.5 },
        { name: 'weird', labels: {}, kind: 'gauge', value: '+Inf' },
        {
          name: 'http.rq_time_seconds',
          labels: {},
          kind: 'histogram',
          buckets: [
            { le: 0.05, count: 2 },
            { le: 0.1, count: 1 },
            { le: 1, count: 1 },
            { le: '+Inf', count: 1 },
          ],
          sum: 3.63,
          count: 5,
        },
        {
          name: 'db.query_seconds',
          labels: { db: 'main' },
          kind: 'histogram',
          buckets: [
            { le: 0.5, count: 1 },
            { le: '+Inf', count: 1 },
          ],
          sum: 1.1,
          count: 2,
        },
      ],
    });
    expect(toJSON([], 2)).toBe('{\n  "stats": []\n}');
  });
});
