import { execa, type ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS } from '../helpers/baton.ts';

/** Followers a test started, killed by pid if one is still running. */
const followers = new Set<ResultPromise>();

afterEach(async () => {
  for (const f of followers) f.kill('SIGKILL');
  await Promise.all([...followers].map((f) => f.catch(() => {})));
  followers.clear();
  await cleanupAll();
});

interface Printed {
  type: string;
  seq: number;
  supervisor: number;
  generation?: number;
  [key: string]: unknown;
}

function parse(stdout: string): Printed[] {
  return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Printed);
}

/** `baton events` left running: every line it prints, and a wait for the first that `match` accepts. */
function follow(baton: BatonProcess) {
  const proc = execa(process.execPath, [...NODE_FLAGS, BIN, 'events', '--control-socket', baton.socketPath], { reject: false, buffer: false, stdin: 'ignore' });
  followers.add(proc);
  const printed: Printed[] = [];
  const waiters: { match: (e: Printed) => boolean; resolve: (e: Printed) => void }[] = [];
  let partial = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const e of parse(lines.join('\n'))) {
      printed.push(e);
      for (const w of [...waiters]) {
        if (!w.match(e)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  const next = (match: (e: Printed) => boolean, timeoutMs = 30_000): Promise<Printed> => {
    const seen = printed.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`baton events printed no such event within ${timeoutMs} ms; printed:\n${printed.map((e) => JSON.stringify(e)).join('\n')}`)), timeoutMs);
      waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  };
  return { proc, printed, next };
}

describe('baton events', () => {
  it('--no-follow prints the kept events as NDJSON, each with the pid that published it; --after N those numbered above N', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const all = await baton.cli('events', '--no-follow');
    expect(all.exitCode, all.stderr).toBe(0);
    const events = parse(all.stdout);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.every((e) => e.supervisor === baton.pid && typeof e.time === 'number')).toBe(true);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['listening', 'worker-starting', 'worker-state', 'generation-active']));
    expect(events.find((e) => e.type === 'generation-active')).toMatchObject({ generation: 1, why: 'start' });
    const later = await baton.cli('events', '--no-follow', '--after', '2');
    expect(parse(later.stdout).map((e) => e.seq)).toEqual(events.slice(2).map((e) => e.seq));
  });

  it('follows new events, reads on from the successor across baton upgrade, and exits 0 when the instance stops', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const f = follow(baton);
    await f.next((e) => e.type === 'generation-active' && e.generation === 1);
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    await f.next((e) => e.type === 'generation-active' && e.generation === 2 && e.supervisor === baton.pid);
    const upgrade = await baton.cli('upgrade');
    expect(upgrade.exitCode, upgrade.stderr).toBe(0);
    const upgraded = await f.next((e) => e.type === 'upgraded');
    expect(upgraded.supervisor).not.toBe(baton.pid);
    expect(upgraded.predecessor).toBe(baton.pid);
    // The successor's own start came before it took the control socket: printed too, under its pid.
    expect(f.printed.find((e) => e.type === 'generation-active' && e.generation === 3)).toMatchObject({ supervisor: upgraded.supervisor });
    // Each supervisor's events once, in its order.
    for (const pid of [baton.pid, upgraded.supervisor]) {
      const seqs = f.printed.filter((e) => e.supervisor === pid).map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
    }
    expect((await baton.cli('stop')).exitCode).toBe(0);
    await f.next((e) => e.type === 'stopped' && e.handedOver === false && e.supervisor === upgraded.supervisor);
    const done = await f.proc;
    expect(done.exitCode).toBe(0);
    followers.delete(f.proc);
  }, 60_000);

  it('says what is wrong with its arguments (exit 2) and when no instance answers (exit 1)', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const bad = await baton.cli('events', '--after', 'soon');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('baton: --after "soon": expected an event number (0 or more)');
    const help = await baton.cli('events', '--help');
    expect(help.stdout).toMatch(/^Usage:\n {2}baton events \[--name N\] \[--no-follow\] \[--after N\]\n/);
    const nobody = await execa(process.execPath, [...NODE_FLAGS, BIN, 'events', '--control-socket', `${baton.dir}/nobody.sock`], { reject: false });
    expect(nobody.exitCode).toBe(1);
    expect(nobody.stderr).toMatch(/no Baton instance answers at .*nobody\.sock \(ENOENT\)/);
  });
});
