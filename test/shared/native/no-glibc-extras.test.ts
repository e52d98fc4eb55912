// The addon on a libc without glibc's extras (musl, old glibc), simulated honestly: the same
// sources compiled with -DBATON_TEST_NO_GLIBC_EXTRAS, which makes every glibc-only call look
// missing (its weak reference is never taken), and loaded into this process next to the real one.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Binding } from '../../../shared/native/binding.d.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const GLIBC_EXTRAS = ['mallinfo2', 'malloc_info', 'malloc_trim', 'strerrorname_np'];

/** The include directory holding node_api.h that node-gyp built the real addon against. */
function nodeApiIncludes(): string {
  const makefile = fs.readFileSync(path.join(root, 'build', 'baton.target.mk'), 'utf8');
  const dir = /-I(\S+\/include\/node)\b/.exec(makefile)?.[1];
  if (!dir || !fs.existsSync(path.join(dir, 'node_api.h'))) throw new Error('no node_api.h include in build/baton.target.mk; run npm ci');
  return dir;
}

function addonSources(): string[] {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8')) as {
    targets: Array<{ target_name: string; sources: string[] }>;
  };
  const target = gyp.targets.find((t) => t.target_name === 'baton');
  if (!target) throw new Error('binding.gyp has no "baton" target');
  return target.sources.map((source) => path.join(root, source));
}

/** Names the addon leaves for the dynamic linker, by binding: 'U' must resolve, 'w' may be absent. */
function dynamicImports(file: string): Map<string, string> {
  const nm = spawnSync('nm', ['-D', '--undefined-only', file], { encoding: 'utf8' });
  if (nm.status !== 0) throw new Error(`nm -D ${file} failed: ${nm.stderr}`);
  const imports = new Map<string, string>();
  for (const line of nm.stdout.split('\n')) {
    const match = /^\s*([Uw])\s+([^@\s]+)/.exec(line);
    if (match?.[1] && match[2]) imports.set(match[2], match[1]);
  }
  return imports;
}

const muslGcc = spawnSync('sh', ['-c', 'command -v musl-gcc'], { encoding: 'utf8' }).stdout.trim();

type TestBinding = Binding & { errnoName(errno: number): string };

let dir = '';
let variantPath = '';
let variant: TestBinding;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-no-glibc-extras-'));
  variantPath = path.join(dir, 'baton-no-glibc-extras.node');
  const cc = spawnSync(
    process.env.CC ?? 'cc',
    [
      ...['-shared', '-fPIC', '-pthread', '-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror'],
      ...['-D_GNU_SOURCE', '-D_FILE_OFFSET_BITS=64', '-DNAPI_VERSION=8', '-DBATON_TEST_NO_GLIBC_EXTRAS'],
      `-I${nodeApiIncludes()}`,
      ...addonSources(),
      '-o',
      variantPath,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (cc.status !== 0) throw new Error(`compiling the test variant failed:\n${cc.stderr}`);
  variant = createRequire(import.meta.url)(variantPath) as TestBinding;
}, 90_000);
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the real build', () => {
  it('only weakly references the glibc extras, so a libc without them still loads it', () => {
    const imports = dynamicImports(path.join(root, 'build', 'Release', 'baton.node'));
    for (const name of GLIBC_EXTRAS) expect([name, imports.get(name)]).toEqual([name, 'w']);
    expect(imports.has('dlsym')).toBe(false);
  });
});

describe.skipIf(!muslGcc)(muslGcc ? 'against musl' : 'against musl — skipped: musl-gcc (Debian musl-tools) is not installed', () => {
  it("compiles with musl's headers, leaving every glibc extra a weak reference", () => {
    const out = path.join(dir, 'baton-musl.node');
    const cc = spawnSync(
      muslGcc,
      [
        ...['-shared', '-fPIC', '-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', '-D_GNU_SOURCE', '-DNAPI_VERSION=8'],
        `-I${nodeApiIncludes()}`,
        ...addonSources(),
        '-o',
        out,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(cc.stderr).toBe('');
    expect(cc.status).toBe(0);
    const imports = dynamicImports(out);
    for (const name of GLIBC_EXTRAS) expect([name, imports.get(name)]).toEqual([name, 'w']);
  }, 60_000);
});

describe('without the glibc extras', () => {
  it('references none of them', () => {
    const imports = dynamicImports(variantPath);
    for (const name of GLIBC_EXTRAS) expect(imports.has(name), name).toBe(false);
  });

  it('reports the malloc figures as unavailable (null) instead of throwing', () => {
    expect(variant.mallinfo2()).toBeNull();
    expect(variant.mallocInfo()).toBeNull();
    expect(variant.mallocTrim(0)).toBeNull();
    // Arguments are still checked, so a bad caller fails alike everywhere.
    expect(() => variant.mallocTrim(-1)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('names every errno Node knows the way Node does, from its own table', () => {
    const byNumber = new Map<number, string[]>();
    for (const [name, number] of Object.entries(os.constants.errno)) byNumber.set(number, [...(byNumber.get(number) ?? []), name]);
    expect(byNumber.size).toBeGreaterThan(70);
    for (const [number, names] of byNumber) expect([number, names]).toEqual([number, expect.arrayContaining([variant.errnoName(number)])]);
    // Aliases give the kernel's canonical name, as glibc's strerrorname_np does.
    expect(variant.errnoName(os.constants.errno.EWOULDBLOCK)).toBe('EAGAIN');
    expect(variant.errnoName(4095)).toBe('E4095');
  });

  it('throws real failures with the errno name as code', () => {
    const [a = -1, b = -1] = variant.socketPair();
    variant.close(a);
    expect(() => variant.close(a)).toThrow(
      expect.objectContaining({ code: 'EBADF', errno: os.constants.errno.EBADF, syscall: 'close', message: `close fd ${a}: EBADF (Bad file descriptor)` }),
    );
    expect(() => variant.recvFds(b)).toThrow(expect.objectContaining({ code: 'ECONNRESET', syscall: 'recvmsg' }));
    variant.close(b);
    const listener = variant.tcpListen('127.0.0.1', 0, 16, false);
    try {
      const { port } = variant.sockName(listener);
      expect(() => variant.tcpListen('127.0.0.1', port, 16, false)).toThrow(
        expect.objectContaining({ code: 'EADDRINUSE', message: `tcpListen bind 127.0.0.1:${port}: EADDRINUSE (Address already in use)` }),
      );
    } finally {
      variant.close(listener);
    }
  });
});
