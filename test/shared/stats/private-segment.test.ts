// A process's private segment (the SDK without Baton): unlinked as soon as it is mapped, and the
// files of private segments whose process died before unlinking them removed by the next one.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createSegment } from '../../../shared/stats/owner-stats.ts';
import { createPrivateSegment, privateInstance, removeDeadPrivateSegments } from '../../../shared/stats/private-segment.ts';
import { tempDir } from './helpers.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const uid = process.getuid!();

/** A pid no process has: one of a child that has exited and been reaped. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  expect(child.status).toBe(0);
  return child.pid!;
}

function plant(dir: string, name: string, mode = 0o600): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, 'x', { mode });
  fs.chmodSync(file, mode);
  return file;
}

describe('private segments', () => {
  it('removes the segment files a dead process left, and nothing else', () => {
    const dir = tempDir();
    const dead = deadPid();
    // A real segment set of a dead process, as a SIGKILL between create and unlink leaves it.
    createSegment({ instance: privateInstance(dead), dir, soleWriter: true });
    const left = fs.readdirSync(dir).filter((n) => n.startsWith(`baton-${uid}-standalone-${dead}.`));
    expect(left.length).toBeGreaterThan(0);

    const live = plant(dir, `baton-${uid}-standalone-${process.ppid}.0`); // a live process's, mid-start
    const own = plant(dir, `baton-${uid}-standalone-${process.pid}.0`);
    const otherInstance = plant(dir, `baton-${uid}-app.0`);
    const otherUid = plant(dir, `baton-${uid + 1}-standalone-${dead}.0`);
    const wrongMode = plant(dir, `baton-${uid}-standalone-${deadPid()}.0`, 0o644);
    const target = plant(dir, 'target');
    const link = path.join(dir, `baton-${uid}-standalone-${deadPid()}.1`);
    fs.symlinkSync(target, link);

    const removed = removeDeadPrivateSegments(dir);
    expect(removed.sort()).toEqual(left.map((n) => path.join(dir, n)).sort());
    for (const file of [live, own, otherInstance, otherUid, wrongMode, target, link]) {
      expect(fs.lstatSync(file).isFile() || fs.lstatSync(file).isSymbolicLink()).toBe(true);
    }
  });

  it('creates a segment that counts but has no file, and sweeps the dead first', () => {
    const dir = tempDir();
    const dead = deadPid();
    createSegment({ instance: privateInstance(dead), dir, soleWriter: true });
    const stats = createPrivateSegment(dir);
    const hits = stats.counter('app.hits');
    hits.inc(2);
    expect(stats.sample('app.hits')).toMatchObject({ value: 2 });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a directory that does not exist has nothing to sweep', () => {
    expect(removeDeadPrivateSegments(path.join(tempDir(), 'missing'))).toEqual([]);
  });

  it('an SDK program without Baton leaves no file in /dev/shm when SIGKILLed', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'test/fixtures/standalone-stats.ts')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      expect(JSON.parse(line)).toEqual({ counted: true });
      expect(fs.readdirSync('/dev/shm').filter((n) => n.startsWith(`baton-${uid}-standalone-${child.pid}.`))).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    expect(fs.readdirSync('/dev/shm').filter((n) => n.startsWith(`baton-${uid}-standalone-${child.pid}.`))).toEqual([]);
  });
});
