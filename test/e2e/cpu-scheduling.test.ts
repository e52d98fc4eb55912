// `cpu-scheduling`: every thread of every worker runs under the policy asked for (the exec shim
// sets it before exec), a reload applies a changed one to the next generation, and a value that
// is not a policy fails the reload with the serving generation untouched.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

afterEach(cleanupAll);

/** Field 41 of /proc/PID/task/TID/stat for every thread of `pid`: 0 SCHED_OTHER, 3 SCHED_BATCH, 5 SCHED_IDLE. */
function policies(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[38]!);
}

async function workerPids(baton: BatonProcess, generation: number): Promise<number[]> {
  const g = (await baton.status()).generations.find((x) => x.generation === generation);
  return g?.workers?.map((w) => w.pid) ?? [];
}

describe('cpu-scheduling', () => {
  it('batch on every thread of both workers; a reload to other applies to the next generation; a bad value fails the reload', async () => {
    const config = httpConfig(fixture('workers-app.ts'), { workers: 2, 'cpu-scheduling': 'batch', 'ready-timeout': '60s' });
    const baton = new BatonProcess(config);
    await baton.active(1);
    const first = await workerPids(baton, 1);
    expect(first).toHaveLength(2);
    for (const pid of first) {
      const threads = policies(pid);
      expect(threads.length).toBeGreaterThan(1);
      expect(new Set(threads)).toEqual(new Set(['3']));
      expect(fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')).not.toContainEqual(expect.stringMatching(/^BATON_CPU_SCHEDULING=/));
    }

    baton.writeConfig({ ...config, 'cpu-scheduling': 'fifo' });
    const refused = await baton.reload();
    expect(refused.body.ok).toBe(false);
    expect(refused.body.error?.message).toMatch(/cpu-scheduling/);
    expect((await baton.status()).active).toBe(1);

    baton.writeConfig({ ...config, 'cpu-scheduling': 'other' });
    const reloaded = await baton.reload();
    expect(reloaded.body).toMatchObject({ ok: true, generation: 2 });
    for (const pid of await workerPids(baton, 2)) expect(new Set(policies(pid))).toEqual(new Set(['0']));
  }, 90_000);
});
