// The prom-client bridge in one process (the SDK's private segment, no Baton): every way
// prom-client counts — inc, inc(labels, n), labels().inc, observe, labels().observe, startTimer,
// exemplars — lands in the segment once, before the call returns; what was counted before the
// bridge is copied once; gauges and summaries are left alone.
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { stats } from '../../child/index.ts';
import { bridgePromClient } from '../../child/prom-client-bridge.ts';
import type { StatSample } from '../../shared/stats/index.ts';

function segment(name: string, labels: Record<string, string> = {}): StatSample | undefined {
  return stats.snapshot().find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels));
}
const valueOf = (s: StatSample | undefined) => (s && s.kind !== 'histogram' ? s.value : undefined);

describe('prom-client bridge, write-through', () => {
  it('mirrors every counter and histogram call at once, exactly once, and copies what came before', async () => {
    const registry = new client.Registry();
    const early = new client.Counter({ name: 'bt_early_total', help: 'Counted before the bridge.', labelNames: ['k'], registers: [registry] });
    early.inc({ k: 'a' }, 3);
    early.inc({ k: 'b' });
    const bridge = bridgePromClient(registry);
    early.inc({ k: 'a' }, 2); // after wrapping, before the copy of the earlier counts settles
    await bridge.sync();
    expect([valueOf(segment('bt_early_total', { k: 'a' })), valueOf(segment('bt_early_total', { k: 'b' }))]).toEqual([5, 1]);

    // Metrics made after the bridge, every way of counting.
    const hits = new client.Counter({ name: 'bt_hits_total', help: 'Hits.', labelNames: ['route', 'code'], registers: [registry] });
    const plain = new client.Counter({ name: 'bt_plain_total', help: 'Plain.', registers: [registry] });
    // Exemplars need an OpenMetrics registry: a second one, bridged too.
    const openMetrics = new (client.Registry as unknown as new (contentType: string) => client.Registry)(client.openMetricsContentType);
    const second = bridgePromClient(openMetrics as never);
    const ex = new client.Counter({ name: 'bt_ex_total', help: 'With exemplars.', labelNames: ['route'], enableExemplars: true, registers: [openMetrics] });
    const hist = new client.Histogram({ name: 'bt_seconds', help: 'Latency.', labelNames: ['route'], buckets: [0.1, 1], registers: [registry] });
    const gauge = new client.Gauge({ name: 'bt_up', help: 'Up.', registers: [registry] });
    const summary = new client.Summary({ name: 'bt_summary', help: 'A summary.', registers: [registry] });
    plain.inc();
    plain.inc(2.5);
    hits.inc({ route: '/a', code: 200 });
    hits.inc({ route: '/a', code: 200 }, 4);
    hits.labels('/a', '200').inc();
    hits.labels({ route: '/b', code: '500' }).inc(2);
    ex.inc({ labels: { route: '/x' }, value: 3, exemplarLabels: { trace: 't1' } } as never);
    hist.observe({ route: '/a' }, 0.05);
    hist.labels('/a').observe(0.5);
    hist.labels({ route: '/a' }).observe(5);
    hist.startTimer({ route: '/b' })();
    hist.labels('/b').startTimer()();
    gauge.set(7);
    summary.observe(1);
    expect(() => hits.inc({ route: '/a', nope: 'x' } as never)).toThrow(); // refused by prom-client: not counted
    expect(() => plain.inc(-1)).toThrow();

    expect(valueOf(segment('bt_plain_total'))).toBe(3.5);
    expect(valueOf(segment('bt_hits_total', { code: '200', route: '/a' }))).toBe(6);
    expect(valueOf(segment('bt_hits_total', { code: '500', route: '/b' }))).toBe(2);
    expect(valueOf(segment('bt_ex_total', { route: '/x' }))).toBe(3);
    expect(segment('bt_seconds', { route: '/a' })).toMatchObject({ kind: 'histogram', bounds: [0.1, 1], buckets: [1, 1, 1], count: 3, sum: 5.55, help: 'Latency.' });
    expect(segment('bt_seconds', { route: '/b' })).toMatchObject({ kind: 'histogram', buckets: [2, 0, 0], count: 2 });
    expect(stats.snapshot().filter((s) => s.name === 'bt_up' || s.name === 'bt_summary')).toEqual([]);

    // The bridge's text: the segment's totals for counters and histograms, prom-client's for the rest.
    const text = await bridge.metrics();
    expect(text).toMatch(/^bt_hits_total\{code="200",route="\/a"\} 6$/m);
    expect(text).toContain('# HELP bt_hits_total Hits.');
    expect(text).toMatch(/^bt_up 7$/m);
    expect(text).toMatch(/^bt_summary_count 1$/m);

    // close(): prom-client counts on its own again.
    bridge.close();
    second.close();
    plain.inc();
    expect(valueOf(segment('bt_plain_total'))).toBe(3.5);
    expect((await plain.get()).values[0]!.value).toBe(4.5);
  });
});
