// The shared stats segment is mapped read-write by every generation, so its bytes are untrusted
// input: damage done to it by another process (cut short, scribbled on, a lock word left set, a
// file planted at its name) must never stop the supervisor or the serving generation, nor wedge
// the control surface. Real supervisor, real generations, real shared memory, real other processes.
import { execa, type ResultPromise } from 'execa';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { computeLayout, H } from '../../shared/stats/layout.ts';
import { segmentPath } from '../../shared/stats/files.ts';
import { alive, BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS, waitForGone } from '../helpers/baton.ts';
import { get } from '../helpers/ports.ts';

const helpers = new Set<ResultPromise>();
afterEach(async () => {
  for (const h of helpers) h.kill('SIGKILL');
  await Promise.all([...helpers].map((h) => h.catch(() => {})));
  helpers.clear();
  await cleanupAll();
});

const LAYOUT = computeLayout();
const ANSWER_MS = 2_000;

/** Resolves with `promise`'s value, failing the test when it takes ANSWER_MS or more. */
async function within<T>(what: string, promise: Promise<T>, ms = ANSWER_MS): Promise<T> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
    expect(performance.now() - started, what).toBeLessThan(ms);
  }
}

function segment0(baton: BatonProcess): string {
  return segmentPath(baton.statsDir, 'test', 0);
}

/** Writes bytes into a live segment file from this (another) process, as a buggy generation would. */
function poke(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  return b;
}

/** How long a healthy reload took in this test: a reload boots a generation, so its 2 s are on top of that. */
let healthyReloadMs = 0;

async function started(): Promise<{ baton: BatonProcess; port: number; servingPid: number }> {
  const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { 'drain-timeout': '2s' }));
  await baton.active(1);
  const port = await baton.port();
  const t0 = performance.now();
  expect((await baton.reload()).body.ok).toBe(true);
  healthyReloadMs = performance.now() - t0;
  await baton.active(2);
  expect((await get({ port })).body).toMatch(/^generation 2 /);
  const servingPid = (await baton.status()).generations.find((g) => g.generation === 2)!.pid;
  return { baton, port, servingPid };
}

/**
 * After the damage: the serving generation answers, /stats and `status` answer within 2 s,
 * `reload` within 2 s more than a healthy one took, `baton stats` finishes (it boots Node),
 * `stop` answers within 2 s, and nothing is left behind.
 */
async function stillServes(baton: BatonProcess, port: number, servingPid: number): Promise<void> {
  for (let i = 0; i < 5; i++) expect((await within('the serving generation', get({ port }))).body).toContain(`pid ${servingPid}`);
  expect(alive(servingPid)).toBe(true);
  const stats = await within('GET /stats', controlRequest(baton.socketPath, 'GET', '/stats'));
  expect(stats.status).toBe(200);
  const status = await within('GET /status', baton.status());
  expect(status.generations.map((g) => g.pid)).toContain(servingPid);
  const read = await within('baton stats', baton.cli('stats', '--name', 'test', '--json'), 10_000);
  // It may refuse a damaged segment, but with an error that says so, not a crash or a hang.
  expect(read.exitCode === 0 || /stats: /.test(read.stderr), read.stderr).toBe(true);
  const reloaded = await within('POST /reload', baton.reload(), healthyReloadMs + ANSWER_MS);
  expect(reloaded.body.ok, JSON.stringify(reloaded.body)).toBe(true);
  await baton.active(3);
  expect((await get({ port })).body).toMatch(/^generation 3 /);
  expect((await within('GET /status after the reload', baton.status())).active).toBe(3);
  const stop = await within('POST /stop', controlRequest(baton.socketPath, 'POST', '/stop'));
  expect(stop.status).toBe(202);
  expect((await baton.exited).exitCode).toBe(0);
  expect(await waitForGone([...baton.childPids], 5_000)).toEqual([]);
  expect(fs.readdirSync(baton.statsDir)).toEqual([]);
}

describe('a damaged stats segment', () => {
  it('cut short by another process: the supervisor and the serving generation survive, and stats start over', async () => {
    const { baton, port, servingPid } = await started();
    const file = segment0(baton);
    const truncate = await execa('truncate', ['-s', '0', file], { reject: false });
    expect(truncate.exitCode, truncate.stderr).toBe(0);
    // The serving generation counts every request into the pages that were cut away.
    for (let i = 0; i < 3; i++) expect((await get({ port })).status).toBe(200);
    await within('GET /stats', controlRequest(baton.socketPath, 'GET', '/stats'));
    const shrunk = await baton.waitForEvent('stats', (e) => e.state === 'shrunk', 5_000);
    expect(shrunk).toMatchObject({ segment: 0, size: 0, expected: LAYOUT.segmentBytes, file });
    await baton.waitForEvent('stats', (e) => e.state === 'restarted', 5_000);
    expect(fs.statSync(file).size).toBe(LAYOUT.segmentBytes);
    await stillServes(baton, port, servingPid);
  });

  it('cut short again and again while it serves: no SIGBUS anywhere', async () => {
    const { baton, port, servingPid } = await started();
    const file = segment0(baton);
    // Another process cutting the file in a loop races every check the supervisor could make.
    const cutter = execa('sh', ['-c', `while :; do truncate -c -s 4096 ${file} 2>/dev/null; truncate -c -s ${LAYOUT.segmentBytes} ${file} 2>/dev/null; done`]);
    helpers.add(cutter);
    for (let i = 0; i < 20; i++) {
      expect((await get({ port })).status).toBe(200);
      expect((await within('GET /stats', controlRequest(baton.socketPath, 'GET', '/stats'))).status).toBe(200);
    }
    cutter.kill('SIGKILL');
    await cutter.catch(() => {});
    helpers.delete(cutter);
    await stillServes(baton, port, servingPid);
  });

  it('a seqlock left odd does not wedge status, reload, stop or baton stats', async () => {
    const { baton, port, servingPid } = await started();
    poke(segment0(baton), 4 * H.seq, int32(12_345));
    await stillServes(baton, port, servingPid);
  });

  it('a registration lock held by a live process that never mapped the segment is taken back', async () => {
    const { baton, port, servingPid } = await started();
    const holder = execa('sleep', ['60']);
    helpers.add(holder);
    poke(segment0(baton), 4 * H.lock, int32(holder.pid!));
    await stillServes(baton, port, servingPid);
    expect(alive(holder.pid!)).toBe(true);
  });

  it('a registration lock held by a live process that maps the segment costs the supervisor a bounded wait', async () => {
    const { baton, port, servingPid } = await started();
    const file = segment0(baton);
    // A stand-in for a generation wedged in registration: it maps the file and sits on the lock.
    const holder = execa(
      'python3',
      ['-c', `import mmap,os,struct,sys,time\nf=os.open(sys.argv[1],os.O_RDWR)\nm=mmap.mmap(f,0)\nm[${4 * H.lock}:${4 * H.lock + 4}]=struct.pack('<i',os.getpid())\nprint('held',flush=True)\ntime.sleep(60)`, file],
      { buffer: false },
    );
    helpers.add(holder);
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    await stillServes(baton, port, servingPid);
  });

  it('random bytes over the stat table are skipped with a warning naming the entries', async () => {
    const { baton, port, servingPid } = await started();
    const file = segment0(baton);
    const count = fs.readFileSync(file).readInt32LE(4 * H.statCount);
    poke(file, LAYOUT.tableOffset, crypto.randomBytes(LAYOUT.statsPerSegment * 32));
    // Entries nobody has decoded yet: every reader meets them.
    poke(file, 4 * H.statCount, int32(count + 8));
    const stats = await within('GET /stats', controlRequest(baton.socketPath, 'GET', '/stats'));
    expect(stats.status).toBe(200);
    // What the warning says is the point here (the stats layer tells damage as text only): it names the entries skipped.
    const warning = await baton.waitForEvent('stats', (e) => e.state === 'damaged' && / entry \d+ \(byte offset \d+\)/.test(e.message), 5_000);
    expect(warning.message).toMatch(/skipped segment 0 entry/);
    await stillServes(baton, port, servingPid);
  });
});

describe('a file planted at a segment name', () => {
  function plantedStart(plant: (file: string) => void): Promise<{ baton: BatonProcess; file: string }> {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    const file = segment0(baton);
    // Planted in the same tick as the spawn: the supervisor is still booting Node, long before it creates segments.
    plant(file);
    return Promise.resolve({ baton, file });
  }

  /** The supervisor refuses, saying which file and what is wrong and how to fix it; nothing of it is left, the planted file untouched. */
  async function refused(baton: BatonProcess, file: string, why: RegExp): Promise<void> {
    const exit = await within('the refusal', baton.exited, 15_000);
    expect(exit.exitCode).not.toBe(0);
    const said = [...baton.lines.map((l) => `${l.msg} ${JSON.stringify(l.err ?? '')}`), baton.stderr.join('')].join('\n');
    expect(said).toContain(`refusing to use ${file}`);
    expect(said).toMatch(why);
    expect(said).toContain('stats.dir');
    expect(await waitForGone([...baton.childPids], 5_000)).toEqual([]);
    expect(fs.readdirSync(baton.statsDir)).toEqual([path.basename(file)]);
  }

  it('another user\'s file is never used nor removed; the error says whose it is and how to fix it', async () => {
    let content = Buffer.alloc(0);
    const { baton, file } = await plantedStart((f) => {
      // It claims to be a live owner's (pid 1), as a DoS would.
      content = Buffer.alloc(LAYOUT.segmentBytes);
      content.writeInt32LE(1, 4 * H.ownerPid);
      fs.writeFileSync(f, content, { mode: 0o600 });
      fs.chownSync(f, 65534, 65534);
    });
    await refused(baton, file, /belongs to uid 65534, not to uid \d+/);
    expect(fs.statSync(file).uid).toBe(65534);
    expect(fs.readFileSync(file).equals(content)).toBe(true);
    fs.rmSync(file);
  });

  it('a symlink is never followed; the error names it', async () => {
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-victim-'));
    const target = path.join(elsewhere, 'victim');
    fs.writeFileSync(target, 'not yours to truncate', { mode: 0o600 });
    try {
      const { baton, file } = await plantedStart((f) => fs.symlinkSync(target, f));
      await refused(baton, file, /it is a symbolic link/);
      expect(fs.readFileSync(target, 'utf8')).toBe('not yours to truncate');
      expect(fs.lstatSync(file).isSymbolicLink()).toBe(true);
      fs.rmSync(file);
    } finally {
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('a file of the right owner but a loose mode is refused too', async () => {
    const { baton, file } = await plantedStart((f) => {
      fs.writeFileSync(f, Buffer.alloc(8192));
      fs.chmodSync(f, 0o666);
    });
    await refused(baton, file, /its mode is 0666, not 0600/);
    fs.rmSync(file);
  });

  it('baton stats refuses a planted file instead of reading it', async () => {
    const dir = fs.mkdtempSync('/dev/shm/baton-test-');
    try {
      const file = segmentPath(dir, 'test', 0);
      fs.writeFileSync(file, Buffer.alloc(LAYOUT.segmentBytes), { mode: 0o600 });
      fs.chownSync(file, 65534, 65534);
      const out = await execa(process.execPath, [...NODE_FLAGS, BIN, 'stats', '--name', 'test', '--json'], {
        reject: false,
        env: { BATON_STATS_DIR: dir },
      });
      expect(out.exitCode).not.toBe(0);
      expect(out.stderr).toContain(`refusing to use ${file}: it belongs to uid 65534`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
