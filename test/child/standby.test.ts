import { execa } from 'execa';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const STANDBY = path.join(ROOT, 'child/standby.ts');

/** A process with the standby preload and `wake` as BATON_STANDBY_WAKE, running a program that prints its environment's BATON_ variables. */
function boot(wake: string) {
  const program = "console.log(JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BATON_')))))";
  return execa(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', STANDBY, '-e', program], {
    reject: false,
    env: { BATON_STANDBY_WAKE: wake },
    extendEnv: true,
    timeout: 20_000,
  });
}

describe('the standby preload woken at boot', () => {
  it('takes the variables it was handed, and the program never sees the hand-over variable', async () => {
    const r = await boot(JSON.stringify({ BATON_GENERATION: '1', BATON_WORKER: '0' }));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ BATON_GENERATION: '1', BATON_WORKER: '0' });
    expect(JSON.parse(r.stdout)).not.toHaveProperty('BATON_STANDBY_WAKE');
  });

  it.each(['{"BATON_GENERATION":', '["BATON_GENERATION"]', '42'])('refuses %s, saying what it got, before the program runs', async (wake) => {
    const r = await boot(wake);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`baton standby: BATON_STANDBY_WAKE is not a JSON object of variables: ${wake}`);
  });
});
