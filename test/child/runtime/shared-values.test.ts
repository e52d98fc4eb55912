import { describe, expect, it } from 'vitest';
import { shared } from '../../../child/index.ts';
import { createTestRuntime, useRuntime } from '../../../child/testing.ts';

describe('shared values without Baton (the test runtime: this process is the whole generation)', () => {
  it('holds what is set, in order, telling each listener; a removed listener hears no more', async () => {
    useRuntime(createTestRuntime());
    const heard: unknown[] = [];
    const stop = shared.onChange((key, value) => heard.push([key, value]));
    expect(shared.get('mode')).toBeUndefined();
    await shared.set('mode', 'fail');
    await shared.set('weight', 0.5);
    await shared.set('mode', null);
    expect([shared.get('mode'), shared.get('weight')]).toEqual([null, 0.5]);
    stop();
    await shared.set('mode', true);
    expect(heard).toEqual([
      ['mode', 'fail'],
      ['weight', 0.5],
      ['mode', null],
    ]);
    expect(shared.get('mode')).toBe(true);
  });

  it('refuses a bad key or value with ERR_BAD_REQUEST that says which, and holds nothing of it', async () => {
    useRuntime(createTestRuntime());
    await expect(shared.set('', 1)).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST', message: expect.stringContaining("letters, digits and '_ . : -', not \"\"") });
    await expect(shared.set('a/b', 1)).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST', message: expect.stringContaining('not "a/b"') });
    await expect(shared.set('k', [1] as never)).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST', message: "shared value 'k' must be a string, number, boolean or null, not an array" });
    await expect(shared.set('k', Number.NaN)).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST', message: "shared value 'k' must be a finite number, not NaN" });
    await expect(shared.set('k', 'x'.repeat(4097))).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST', message: "shared value 'k' is 4097 characters long: at most 4096" });
    expect(shared.get('k')).toBeUndefined();
  });
});
