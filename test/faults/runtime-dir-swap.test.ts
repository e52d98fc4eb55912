import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS, waitForGone } from '../helpers/baton.ts';
import { isRoot, SKIP_NOT_ROOT } from '../helpers/control-peer.ts';

const NOBODY = 65534;
const bases: string[] = [];
const strangers: ChildProcess[] = [];

afterEach(async () => {
  for (const s of strangers.splice(0)) s.kill('SIGKILL');
  await cleanupAll();
  for (const b of bases.splice(0)) fs.rmSync(b, { recursive: true, force: true });
});

/** A directory of ours that others may traverse (so uid 65534 can reach what is under it), and may not write. */
function base(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-rtdir-'));
  fs.chmodSync(dir, 0o755);
  bases.push(dir);
  return dir;
}

/** Runs the baton CLI with `runtime` as its runtime directory. */
function baton(runtime: string, ...args: string[]) {
  return execa(process.execPath, [...NODE_FLAGS, BIN, ...args], { reject: false, env: { BATON_RUNTIME_DIR: runtime }, timeout: 30_000 });
}

/** As uid 65534: makes `dir` (0700, its own) and answers GET /status there with a fake instance. */
async function fakeInstance(dir: string): Promise<void> {
  const script = `
    const fs = require('node:fs');
    fs.mkdirSync(${JSON.stringify(dir)}, { mode: 0o700 });
    require('node:http').createServer((req, res) => res.end(JSON.stringify({ instance: 'FAKE', pid: 1, uptimeMs: 0, active: 1, stopping: false, generations: [], listeners: [] })))
      .listen(${JSON.stringify(path.join(dir, 'baton.sock'))}, () => console.log('ready'));`;
  const child = spawn(process.execPath, ['-e', script], { uid: NOBODY, gid: NOBODY, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
  strangers.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`fake instance exited ${code}`)));
  });
}

describe.skipIf(!isRoot)(`runtime directory under a parent another user can write (${isRoot ? 'as root' : SKIP_NOT_ROOT})`, () => {
  it('a client refuses a runtime directory another user swapped in under a 0777 parent, and says why', async () => {
    const open = path.join(base(), 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const runtime = path.join(open, 'run');
    await fakeInstance(runtime);
    const status = await baton(runtime, 'status', '--json');
    expect(status.stdout).not.toContain('FAKE');
    expect(status.exitCode).toBe(1);
    expect(status.stderr).toContain(`refusing the control socket directory ${runtime}: ${open} is writable by every user (mode 0777) without the sticky bit`);
  });

  it('a client refuses a runtime directory of another uid even in a sticky parent', async () => {
    const sticky = path.join(base(), 'sticky');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    const runtime = path.join(sticky, 'run');
    await fakeInstance(runtime);
    const status = await baton(runtime, 'status');
    expect(status.stdout).not.toContain('FAKE');
    expect(status.exitCode).toBe(1);
    expect(status.stderr).toContain(`${runtime} belongs to uid ${NOBODY}`);
  });

  it('the supervisor refuses to start under a 0777 parent or one owned by another uid, naming the directory', async () => {
    const open = path.join(base(), 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const refused = await baton(path.join(open, 'run'), 'run', '--listen', '127.0.0.1:0', '--', ...fixture('http-app.ts'));
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`${open} is writable by every user (mode 0777) without the sticky bit`);
    expect(fs.existsSync(path.join(open, 'run'))).toBe(false);

    const theirs = path.join(base(), 'theirs');
    fs.mkdirSync(theirs, { mode: 0o755 });
    fs.chownSync(theirs, NOBODY, NOBODY);
    const refused2 = await baton(path.join(theirs, 'run'), 'run', '--listen', '127.0.0.1:0', '--', ...fixture('http-app.ts'));
    expect(refused2.exitCode).toBe(1);
    expect(refused2.stderr).toContain(`${theirs} belongs to uid ${NOBODY}`);
    expect(fs.existsSync(path.join(theirs, 'run'))).toBe(false);
  });

  it('a symbolic link on the way counts: one owned by another uid is refused', async () => {
    const b = base();
    const real = path.join(b, 'real');
    fs.mkdirSync(real, { mode: 0o700 });
    const link = path.join(b, 'link');
    fs.symlinkSync(real, link);
    fs.lchownSync(link, NOBODY, NOBODY);
    const refused = await baton(path.join(link, 'run'), 'run', '--listen', '127.0.0.1:0', '--', ...fixture('http-app.ts'));
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`${link} is a symbolic link owned by uid ${NOBODY}`);
  });
});

describe('runtime directory contents are private', () => {
  it('a sticky parent like /tmp is fine; the compile cache and notify directories are created 0700', async () => {
    const sticky = path.join(base(), 'sticky');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    const runtime = path.join(sticky, 'run');
    const b = new BatonProcess(httpConfig(fixture('http-app.ts'), { 'control-socket': path.join(runtime, 'test.sock') }), [], { BATON_RUNTIME_DIR: runtime });
    await b.active(1);
    const status = await baton(runtime, 'status', '--name', 'test', '--json');
    expect(status.exitCode).toBe(0);
    const mode = (p: string): string => (fs.statSync(p).mode & 0o777).toString(8);
    expect({ run: mode(runtime), cache: mode(path.join(runtime, 'compile-cache')), notify: mode(path.join(runtime, 'notify')) }).toEqual({ run: '700', cache: '700', notify: '700' });
  });

  it('an existing compile cache open to others is closed; a notify directory open to others stops the start with its reason', async () => {
    const runtime = path.join(base(), 'run');
    fs.mkdirSync(runtime, { mode: 0o700 });
    fs.mkdirSync(path.join(runtime, 'compile-cache'));
    fs.chmodSync(path.join(runtime, 'compile-cache'), 0o777);
    // A CLI command, through bin/baton: the cache it turns on is closed first.
    await baton(runtime, 'version');
    expect(fs.statSync(path.join(runtime, 'compile-cache')).mode & 0o777).toBe(0o700);

    fs.mkdirSync(path.join(runtime, 'notify'));
    fs.chmodSync(path.join(runtime, 'notify'), 0o777);
    const refused = await baton(runtime, 'run', '--listen', '127.0.0.1:0', '--', ...fixture('http-app.ts'));
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`${path.join(runtime, 'notify')} must be a directory of uid ${process.getuid!()} closed to others (it is: owner uid ${process.getuid!()}, mode 0777)`);
    expect(fs.readdirSync(path.join(runtime, 'notify'))).toEqual([]);
  });
});

void alive;
void waitForGone;
