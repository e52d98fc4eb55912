// Segment files: creation and mode, a live or stale owner, incompatible layouts, destroy, the
// generation table, the registration lock held by a live or dead process.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { STATS_ERR, computeLayout, createSegment, hotRestartVersion, openSegment, segmentPath } from '../../../shared/stats/index.ts';
import { H } from '../../../shared/stats/layout.ts';
import { instanceName, recordingLogger, startWorker, tempDir } from './helpers.ts';

describe('stats segment lifecycle', () => {
  it('creates segment 0 with mode 0600 whatever the umask, sized as the layout says', () => {
    const dir = tempDir();
    const instance = instanceName();
    const umask = process.umask(0);
    let owner;
    try {
      owner = createSegment({ dir, instance });
    } finally {
      process.umask(umask);
    }
    const file = segmentPath(dir, instance, 0);
    expect(owner.files).toEqual([file]);
    const stat = fs.statSync(file);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(stat.size).toBe(computeLayout().segmentBytes);
    const header = new Int32Array(new Uint8Array(fs.readFileSync(file).subarray(0, 128)).buffer);
    expect(header[H.ownerPid]).toBe(process.pid);
    expect(owner.version).toBe(hotRestartVersion());
    expect(owner.stalePid).toBeUndefined();
    owner.destroy();
  });

  it('refuses a second owner while the first is alive, and re-initialises once it was SIGKILLed', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const capacities = { statsPerSegment: 4 };
    const first = startWorker({ mode: 'own', dir, instance, capacities, counters: 6 }); // 7 stats: two files
    const { files } = await first.waitFor('ready');
    expect(files).toHaveLength(2);

    expect(() => createSegment({ dir, instance, ...capacities })).toThrow(
      expect.objectContaining({
        code: STATS_ERR.owned,
        message: expect.stringMatching(new RegExp(`instance "${instance}" already owns segment .*\\.0 \\(owner pid ${first.pid} is alive\\)`)),
      }),
    );
    expect(fs.readdirSync(dir)).toHaveLength(2); // the refusal touched nothing

    await first.kill();
    const logger = recordingLogger();
    const second = createSegment({ dir, instance, logger, ...capacities });
    expect(second.stalePid).toBe(first.pid);
    expect(logger.infos).toEqual([expect.stringContaining(`re-initialised the stale segments of ${instance} left by dead pid ${first.pid}`)]);
    expect(fs.readdirSync(dir)).toEqual([`baton-${process.getuid?.()}-${instance}.0`]);
    expect(second.snapshot().map((s) => s.name)).toEqual(['baton.stats.overflow']);
    second.destroy();
  });

  it('a process still mapping a replaced set never touches the new owner\'s files', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const capacities = { statsPerSegment: 4 };
    const first = startWorker({ mode: 'own', dir, instance, capacities, counters: 2 });
    await first.waitFor('ready');
    const orphanLogger = recordingLogger();
    const orphan = openSegment({ dir, instance, ...capacities, writer: 1, logger: orphanLogger }); // a generation of the old owner
    await first.kill();
    const owner = createSegment({ dir, instance, ...capacities, logger: recordingLogger() });
    for (let i = 0; i < 6; i++) owner.counter(`new.c${i}`).inc();
    const before = fs.readdirSync(dir).map((f) => [f, fs.statSync(`${dir}/${f}`).ino]);
    expect(before).toHaveLength(2);

    for (let i = 0; i < 5; i++) orphan.counter(`old.c${i}`).inc(); // one fits its old segment; then it would need to grow
    expect(orphanLogger.warns).toEqual([expect.stringContaining('no room for "old.c1"')]);
    expect(fs.readdirSync(dir).map((f) => [f, fs.statSync(`${dir}/${f}`).ino])).toEqual(before);
    expect(owner.snapshot().map((s) => s.name)).toEqual(['baton.stats.overflow', ...[0, 1, 2, 3, 4, 5].map((i) => `new.c${i}`)]);
    expect(orphan.sample('old.c0')).toMatchObject({ value: 1 });
    owner.destroy();
  });

  it('a second owner in the same (live) process is refused too', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    expect(() => createSegment({ dir, instance })).toThrow(expect.objectContaining({ code: STATS_ERR.owned }));
    owner.destroy();
  });

  it('refuses to map a segment with another hot-restart version, naming both; adopts its capacities when given none', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance, writers: 8 });
    const theirs = hotRestartVersion({ writers: 8 });
    const ours = hotRestartVersion({ writers: 16 });
    expect(() => openSegment({ dir, instance, writers: 16, writer: 1 })).toThrow(
      expect.objectContaining({ code: STATS_ERR.incompatible, message: expect.stringContaining(`has hot-restart version ${theirs}, this process expects ${ours}`) }),
    );
    expect(openSegment({ dir, instance, writers: 8, writer: 7 }).version).toBe(theirs);
    expect(openSegment({ dir, instance, writer: 7 }).version).toBe(theirs);
    owner.destroy();
  });

  it('refuses a file that is not a segment, a missing one, and writer indexes out of range', () => {
    const dir = tempDir();
    const instance = instanceName();
    expect(() => openSegment({ dir, instance })).toThrow(
      expect.objectContaining({ code: STATS_ERR.invalid, message: expect.stringContaining(`no segment ${segmentPath(dir, instance, 0)}`) }),
    );
    fs.writeFileSync(segmentPath(dir, instance, 0), Buffer.alloc(8192, 7), { mode: 0o600 });
    expect(() => openSegment({ dir, instance })).toThrow(expect.objectContaining({ message: expect.stringContaining('bad magic number') }));
    fs.rmSync(segmentPath(dir, instance, 0));
    const owner = createSegment({ dir, instance });
    for (const writer of [0, 16, -1, 1.5]) {
      expect(() => openSegment({ dir, instance, writer })).toThrow(expect.objectContaining({ message: expect.stringContaining('writer must be an integer from 1 to 15') }));
    }
    expect(() => createSegment({ dir, instance: '../escape' })).toThrow(expect.objectContaining({ code: STATS_ERR.invalid }));
    owner.destroy();
  });

  it('destroy() removes every segment file; handles keep working without throwing', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance, statsPerSegment: 2 });
    const counters = Array.from({ length: 5 }, (_, i) => owner.counter(`c${i}`));
    expect(fs.readdirSync(dir).sort()).toEqual([0, 1, 2].map((k) => `baton-${process.getuid?.()}-${instance}.${k}`));
    fs.writeFileSync(`${dir}/unrelated`, 'x');
    const logger = recordingLogger();
    const late = openSegment({ dir, instance, statsPerSegment: 2, writer: 1, logger }); // mapped before the stop
    owner.destroy();
    expect(fs.readdirSync(dir)).toEqual(['unrelated']);
    for (const c of counters) c.inc();
    expect(owner.sample('c4')).toMatchObject({ value: 1 });
    // Nobody grows the set after destroy(): a new stat that needs a segment is a no-op.
    late.counter('c5').inc();
    expect(fs.readdirSync(dir)).toEqual(['unrelated']);
    expect(logger.warns).toEqual([expect.stringContaining('were destroyed (clean stop)')]);
  });

  it('keeps a generation table every mapper reads', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance, generations: 4 });
    const reader = openSegment({ dir, instance, generations: 4 });
    expect(reader.generations()).toEqual([]);
    owner.setGeneration(2, { number: 7, pid: 1234, state: 'active', startedAt: 1_700_000_000_123.5, writer: 3 });
    owner.setGeneration(0, { number: 8, pid: 1235, state: 'starting', startedAt: 1_700_000_001_000, writer: -1 });
    expect(reader.generations()).toEqual([
      { slot: 0, number: 8, pid: 1235, state: 'starting', startedAt: 1_700_000_001_000, writer: -1 },
      { slot: 2, number: 7, pid: 1234, state: 'active', startedAt: 1_700_000_000_123.5, writer: 3 },
    ]);
    owner.setGeneration(2, { number: 7, pid: 1234, state: 'free', startedAt: 0, writer: -1 });
    expect(reader.generations().map((g) => g.slot)).toEqual([0]);
    expect(() => owner.setGeneration(4, { number: 1, pid: 1, state: 'ready', startedAt: 0, writer: 1 })).toThrow(/slot must be an integer from 0 to 3/);
    expect(() => owner.setGeneration(1, { number: 1, pid: 1, state: 'bogus' as 'ready', startedAt: 0, writer: 1 })).toThrow(/unknown generation state/);
    owner.destroy();
  });

  it('waits a bounded time on a registration lock held by a live process that maps the segment, and takes it from a SIGKILLed one', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const logger = recordingLogger();
    const owner = createSegment({ dir, instance, logger, lockTimeoutMs: 300 });
    const holder = startWorker({ mode: 'hold-lock', dir, instance });
    await holder.waitFor('locked');
    const started = performance.now();
    // Not recorded (an overflow, said once) rather than thrown: stats must not stop the program.
    owner.counter('blocked').inc();
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(logger.warns).toEqual([expect.stringContaining(`registration lock of ${instance} is held by live pid ${holder.pid} for over 300 ms`)]);
    // The holder it gave up on is not waited on again.
    const again = performance.now();
    owner.gauge('blocked.too').set(1);
    expect(performance.now() - again).toBeLessThan(100);
    expect(owner.snapshot(/blocked/)).toEqual([]);

    await holder.kill();
    owner.counter('after').inc(2);
    expect(owner.sample('after')).toMatchObject({ value: 2 });
    expect(logger.infos).toEqual([`stats: took the registration lock of ${instance} from dead pid ${holder.pid}`]);
    owner.destroy();
  });

  it('takes the lock from a holder that is a zombie (killed, not yet reaped)', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const logger = recordingLogger();
    const owner = createSegment({ dir, instance, logger, lockTimeoutMs: 5000 });
    const holder = startWorker({ mode: 'hold-lock', dir, instance });
    await holder.waitFor('locked');
    holder.child.kill('SIGKILL');
    // Synchronously, so Node cannot reap it in between: wait for the zombie state, then register.
    const deadline = Date.now() + 5000;
    while (!/\) Z /.test(fs.readFileSync(`/proc/${holder.pid}/stat`, 'latin1'))) {
      if (Date.now() > deadline) throw new Error('holder never became a zombie');
    }
    owner.counter('after.zombie').inc();
    expect(fs.readFileSync(`/proc/${holder.pid}/stat`, 'latin1')).toMatch(/\) Z /); // still unreaped
    expect(logger.infos).toEqual([`stats: took the registration lock of ${instance} from dead pid ${holder.pid}`]);
    await holder.exited;
    owner.destroy();
  });
});
