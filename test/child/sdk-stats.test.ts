import { describe, expect, it } from 'vitest';
import { stats } from '../../child/index.ts';
import { hotRestartVersion } from '../../shared/stats/index.ts';

describe('SDK stats without Baton', () => {
  it('reads back what it wrote: a private segment, with the hot-restart version of the default layout', () => {
    const requests = stats.counter('sdk_test.requests', { route: 'a' });
    requests.inc();
    requests.inc(2);
    stats.gauge('sdk_test.open').set(7);
    expect(stats.snapshot(/^sdk_test\./).map((s) => [s.name, s.labels, s.kind === 'histogram' ? s.count : s.value])).toEqual([
      ['sdk_test.requests', { route: 'a' }, 3],
      ['sdk_test.open', {}, 7],
    ]);
    expect(stats.version()).toBe(hotRestartVersion());
  });
});
