// The mapping rules from dotted stat names to Prometheus families and labels (prom-names.ts),
// and the SDK's checks at registration (help, label names, a family two kinds would share).
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { stats } from '../../../child/index.ts';
import { BATON_FAMILIES, createSegment, promName, toPrometheus } from '../../../shared/stats/index.ts';
import { instanceName, tempDir } from './helpers.ts';

describe('Prometheus names', () => {
  it.each([
    ['counter', 'cluster.app.upstream_rq_total', 'baton_cluster_upstream_rq_total', { cluster_name: 'app' }, 1],
    ['counter', 'cluster.app.upstream_rq_2xx', 'baton_cluster_upstream_rq_xx_total', { cluster_name: 'app', code_class: '2xx' }, 1],
    ['counter', 'http.web.downstream_rq_5xx', 'baton_http_downstream_rq_xx_total', { listener: 'web', code_class: '5xx' }, 1],
    ['counter', 'cluster.app.health_check.attempt', 'baton_cluster_health_check_attempt_total', { cluster_name: 'app' }, 1],
    ['histogram', 'http.web.downstream_rq_time', 'baton_http_downstream_rq_time_seconds', { listener: 'web' }, 1000],
    ['gauge', 'listener.web.downstream_cx_active', 'baton_listener_downstream_cx_active', { listener: 'web' }, 1],
    ['counter', 'baton.reloads_failed', 'baton_reloads_failed_total', {}, 1],
    ['gauge', 'baton.memory.heap_total', 'baton_memory_heap_total_bytes', {}, 1],
    ['gauge', 'baton.memory.malloc_free_chunks', 'baton_memory_malloc_free_chunks', {}, 1],
    ['gauge', 'baton.memory.sampled_at', 'baton_memory_sampled_at_timestamp_seconds', {}, 1000],
    ['histogram', 'app.db.query_ms', 'app_db_query_seconds', {}, 1000],
    ['gauge', 'app.runtime.event_loop_delay_ms', 'app_runtime_event_loop_delay_seconds', {}, 1000],
    ['gauge', 'app.queue_total', 'app_queue_all', {}, 1],
    ['gauge', 'baton.memory.gc_major_count', 'baton_memory_gc_major_count_value', {}, 1],
    ['counter', 'app.requests', 'app_requests_total', {}, 1],
    ['counter', 'app_hits_total', 'app_hits_total', {}, 1],
    // Two segments only: no instance name to extract, nothing Envoy-style about it.
    ['histogram', 'http.rq_time_seconds', 'http_rq_time_seconds', {}, 1],
  ] as const)('%s %s → %s %j', (kind, dotted, family, extracted, divisor) => {
    expect(promName(kind, dotted)).toEqual({ family, extracted, divisor });
  });

  it('labels a writer slot by its generation, scales ms to seconds, gives every family HELP (and promtool, when installed, agrees)', () => {
    const owner = createSegment({ dir: tempDir(), instance: instanceName() });
    owner.counter('cluster.app.upstream_rq_2xx').inc(2);
    owner.histogram('cluster.app.upstream_rq_time', [0.5, 1, 25]).record(3);
    owner.gauge('baton.memory.rss', { writer: '1' }).set(1 << 20);
    owner.gauge('baton.memory.rss', { writer: '2' }).set(2 << 20);
    // A writer slot no generation holds (retired, zeroed): left out.
    owner.gauge('baton.memory.rss', { writer: '3' }).set(0);
    const text = toPrometheus(owner.snapshot(), {
      generations: [
        { slot: 0, number: 4, pid: 1, state: 'active', startedAt: 1_700_000_000_000, writer: 1, worker: 0 },
        { slot: 1, number: 4, pid: 2, state: 'active', startedAt: 1_700_000_000_500, writer: 2, worker: 1 },
      ],
    });
    owner.destroy();
    expect(text).toContain('baton_memory_rss_bytes{generation="4",worker="0"} 1048576\nbaton_memory_rss_bytes{generation="4",worker="1"} 2097152\n# HELP');
    expect(text).toContain('baton_generation_start_time_seconds{generation="4",worker="0"} 1700000000\nbaton_generation_start_time_seconds{generation="4",worker="1"} 1700000000.5\n');
    expect(text).toContain('baton_cluster_upstream_rq_time_seconds_bucket{cluster_name="app",le="0.0005"} 0\n');
    expect(text).toContain('baton_cluster_upstream_rq_time_seconds_sum{cluster_name="app"} 0.003\n');
    for (const family of text.match(/^# TYPE (\S+)/gm)!.map((l) => l.slice(7))) expect(text).toContain(`# HELP ${family} `);
    if (spawnSync('/usr/bin/promtool', ['--version']).status === 0) expect(execFileSync('/usr/bin/promtool', ['check', 'metrics'], { input: text }).toString()).toBe('');
  });

  it('orders a family by generation and worker, whatever order the workers took their slots in', () => {
    const owner = createSegment({ dir: tempDir(), instance: instanceName() });
    // Worker 1 registered first (slot 1), worker 0 second (slot 2), generation 5 before 4.
    for (const w of ['1', '2', '3']) owner.gauge('baton.memory.rss', { writer: w }).set(Number(w) << 20);
    const text = toPrometheus(owner.snapshot(), {
      generations: [
        { slot: 0, number: 4, pid: 1, state: 'draining', startedAt: 1, writer: 3, worker: 0 },
        { slot: 1, number: 5, pid: 2, state: 'active', startedAt: 2, writer: 1, worker: 1 },
        { slot: 2, number: 5, pid: 3, state: 'active', startedAt: 3, writer: 2, worker: 0 },
      ],
    });
    owner.destroy();
    expect(text.match(/^baton_memory_rss_bytes\S+/gm)).toEqual([
      'baton_memory_rss_bytes{generation="4",worker="0"}',
      'baton_memory_rss_bytes{generation="5",worker="0"}',
      'baton_memory_rss_bytes{generation="5",worker="1"}',
    ]);
  });

  it('documents no family twice and only names Prometheus accepts', () => {
    const families = BATON_FAMILIES.map((f) => f.family);
    expect(new Set(families).size).toBe(families.length);
    for (const f of BATON_FAMILIES) {
      expect(f.family).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
      if (f.type === 'counter') expect(f.family).toMatch(/_total$/);
      else expect(f.family).not.toMatch(/_total$/);
    }
  });
});

describe('SDK registration', () => {
  it('takes help and label names, keeps the old signature, and writes the help into metrics()', () => {
    const routes = stats.counter('names_test.requests', { help: 'Requests, by route.', labels: ['route'] });
    routes.labels('/a').inc();
    routes.labels({ route: '/a' }).inc(2);
    routes.labels('/b').inc();
    stats.counter('names_test.old', { route: 'x' }).inc(5);
    const h = stats.histogram('names_test.latency_seconds', { help: 'Latency.', buckets: [0.1, 1], labels: ['op'] });
    h.labels('get').record(0.5);
    stats.histogram('names_test.old_seconds', [1], { help: 'Old-style bounds with options.' }).record(2);
    const text = stats.metrics(/^names_test\./);
    expect(text).toContain('# HELP names_test_requests_total Requests, by route.\n# TYPE names_test_requests_total counter\n');
    expect(text).toContain('names_test_requests_total{route="/a"} 3\nnames_test_requests_total{route="/b"} 1\n');
    expect(text).toContain('names_test_old_total{route="x"} 5\n');
    expect(text).toContain('names_test_latency_seconds_bucket{op="get",le="1"} 1\n');
    expect(text).toContain('# HELP names_test_old_seconds Old-style bounds with options.\n');
  });

  it('refuses bad registrations with an error saying what and where', () => {
    expect(() => stats.counter('names-test.bad', { help: 'x' })).toThrow(/stat name "names-test.bad" must match/);
    expect(() => stats.counter('names_test.bad_label', { labels: ['ok', 'not-ok'] })).toThrow(/stat "names_test.bad_label": label name "not-ok" must match/);
    expect(() => stats.counter('names_test.dup', { labels: ['a', 'a'] })).toThrow(/label names \["a","a"\] repeat/);
    expect(() => stats.counter('cluster.app.names_test', { labels: ['cluster_name'] })).toThrow(/label cluster_name is already taken by the name itself/);
    expect(() => stats.counter('names_test.help', { help: '' })).toThrow(/help must be a non-empty string/);
    expect(() => stats.histogram('names_test.nobounds', { help: 'x' } as never)).toThrow(/needs its bucket bounds/);
    expect(() => stats.histogram('names_test.le', { buckets: [1], labels: ['le'] })).toThrow(/cannot have a label named "le"/);
    stats.gauge('names_test.clash');
    expect(() => stats.histogram('names_test_clash', [1])).toThrow(
      /stat "names_test_clash": as a histogram it maps to Prometheus family names_test_clash, which the gauge "names_test.clash" already maps to/,
    );
    const family = stats.counter('names_test.family', { labels: ['a', 'b'] });
    expect(() => family.labels('x')).toThrow(/1 label values given for 2 labels \(a, b\)/);
    expect(() => family.labels({ c: 'x' })).toThrow(/unknown label c/);
  });
});
