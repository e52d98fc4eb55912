import { describe, expect, it } from 'vitest';
import { MAX_FILTER_LENGTH, statFilter } from '../../../supervisor/control/stat-filter.ts';
import { handleControl, type ControlTarget } from '../../../supervisor/control/api.ts';

describe('statFilter', () => {
  it('matches like a regular expression on stat names', () => {
    const f = statFilter('^baton\\.reloads_(ok|failed)$');
    expect(['baton.reloads_ok', 'baton.reloads_failed', 'baton.reloads_okay', 'x.baton.reloads_ok'].map((n) => f.test(n))).toEqual([true, true, false, false]);
    expect(f).toBeInstanceOf(RegExp);
  });

  it('answers a pattern that backtracks catastrophically in linear time', () => {
    // JavaScript's own engine spends minutes on this against a long name; RE2 does not backtrack.
    const f = statFilter('(.*){1,7}X');
    const started = performance.now();
    expect(f.test('a'.repeat(1024))).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses what RE2 cannot run and what is too long, with ERR_USAGE', () => {
    expect(() => statFilter('(')).toThrow(expect.objectContaining({ code: 'ERR_USAGE', message: expect.stringContaining('invalid filter "("') }));
    expect(() => statFilter('(a)\\1')).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
    expect(() => statFilter('a'.repeat(MAX_FILTER_LENGTH + 1))).toThrow(expect.objectContaining({ code: 'ERR_USAGE', message: expect.stringContaining(`at most ${MAX_FILTER_LENGTH}`) }));
  });

  it('is what the control API filters /stats with', async () => {
    const names = ['a'.repeat(1000), 'baton.crashes'];
    const seen: string[] = [];
    const target = {
      stats: (filter?: RegExp) => names.filter((n) => filter?.test(n) ?? true).map((name) => (seen.push(name), { name, kind: 'counter', labels: {}, value: 1 })),
    } as unknown as ControlTarget;
    const started = performance.now();
    const reply = await handleControl(target, 'GET', `/stats?filter=${encodeURIComponent('(.*){1,7}X')}`);
    expect(reply.status).toBe(200);
    expect(seen).toEqual([]);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
