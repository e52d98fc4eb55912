/**
 * `npm run build` (and `prepack`): what the package ships that a checkout does not need.
 * - dist/: JavaScript, declarations and source maps of supervisor/, child/, shared/ and proxy/
 *   (tsconfig.build.json), since Node strips no types under node_modules;
 * - dist/supervisor/bundle/: the command line as a few files (bundleCli below), which bin/baton runs;
 * - prebuilds/linux-x64-glibc/: the native addon and the exec shim, built here from source, so an
 *   install on linux-x64 with glibc needs no compiler;
 * - prebuilds/linux-arm64-glibc/: the same, cross-built (scripts/prebuild-arm64.ts) when the
 *   cross compiler is installed; without it the package has none and arm64 builds from source.
 * All are made anew each time: a module renamed in the sources must not linger in dist/.
 */
import { spawnSync } from 'node:child_process';
import { build, type Plugin } from 'esbuild';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const prebuilds = path.join(root, 'prebuilds');

function run(command: string, args: string[]): void {
  // Progress on stderr: `npm pack --json` must have nothing but its JSON on stdout.
  const r = spawnSync(command, args, { cwd: root, stdio: ['inherit', 2, 2] });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

/** `./x.ts` → `./x.js`, `./x.d.ts` → `./x.js`: tsc rewrites relative `.ts` imports in JavaScript, not in declarations. */
function rewriteSpecifiers(text: string): string {
  return text.replace(/((?:from|import)\s*\(?\s*)(['"])(\.\.?\/[^'"]*?)(\.d)?\.([cm]?)ts\2/g, (_m, pre: string, q: string, spec: string, _d, k: string) => `${pre}${q}${spec}.${k}js${q}`);
}

fs.rmSync(dist, { recursive: true, force: true });
fs.rmSync(prebuilds, { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
run(process.execPath, [tsc, '-p', 'tsconfig.build.json']);
const config = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
// Hand-written declarations (the addon's binding.d.ts) and plain browser scripts (the dashboard's
// app) are inputs tsc does not copy.
for (const top of config.include) {
  for (const file of walk(path.join(root, top)).filter((f) => f.endsWith('.d.ts') || f.endsWith('-app.js'))) {
    const target = path.join(dist, path.relative(root, file));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(file, target);
  }
}
for (const file of walk(dist).filter((f) => f.endsWith('.d.ts'))) {
  const text = fs.readFileSync(file, 'utf8');
  const fixed = rewriteSpecifiers(text);
  if (fixed !== text) fs.writeFileSync(file, fixed);
}

/**
 * `import fs from 'node:fs'` in an ES module builds fs's ES facade, which reads every export and so
 * loads what fs loads lazily (its promises and streams): 3-6 ms for fs, 1-2 for util, net and
 * child_process, ~10 ms of `baton dev` before it can boot generation 1 (issue #19). In the bundle
 * each built-in is instead the object process.getBuiltinModule returns, as CommonJS code gets it:
 * the same exports, read when used.
 */
const builtinsWithoutFacades: Plugin = {
  name: 'builtins-without-facades',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'node-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

/**
 * The command line and the supervisor bundled from dist/supervisor/cli/cli.js, one chunk per
 * command's lazy import. A supervisor's start loaded ~160 modules, each resolved, read and linked
 * on its own: 70–100 ms of `baton dev`'s and `baton run`'s start, where the same code as a bundle
 * loads in ~30–40 (issue #19). Dependencies stay in node_modules (their own files, licences and
 * versions). The chunks sit two folders below dist/, as every module of supervisor/ does, so the
 * paths they take from import.meta.url (../../child/standby.js, the addon, the package root)
 * resolve as they do unbundled. Names are kept: error classes and their codes read as written.
 */
async function bundleCli(): Promise<void> {
  await build({
    plugins: [builtinsWithoutFacades],
    entryPoints: [path.join(dist, 'supervisor/cli/cli.js')],
    outdir: path.join(dist, 'supervisor/bundle'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    packages: 'external',
    keepNames: true,
    sourcemap: true,
    chunkNames: 'chunk-[hash]',
    logLevel: 'warning',
  });
}

/**
 * The commands a deploy runs against a live instance (supervisor/cli/client-cli.ts) as one
 * CommonJS file beside the chunks: bin/baton requires it, with no ES module loader and no chunk to
 * link, and `baton reload` reaches the supervisor ~10 ms sooner. CommonJS has no import.meta: each module's
 * import.meta.url is this file's URL, which sits where the chunks do, so paths taken from it resolve alike.
 */
async function bundleClient(): Promise<void> {
  const result = await build({
    entryPoints: [path.join(dist, 'supervisor/cli/client-cli.js')],
    outfile: path.join(dist, 'supervisor/bundle/client.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node22',
    packages: 'external',
    keepNames: true,
    sourcemap: true,
    define: { 'import.meta.url': '__batonModuleUrl' },
    // `--config` alone needs the configuration and its schema (~50 KB of the bundle, what it
    // imports: stats, units, the addon's loader): left as dist/supervisor/config/config.js, imported
    // when reached, so the other commands neither read nor compile it. bundle/ sits beside cli/,
    // so the same relative path names the same file.
    plugins: [
      {
        name: 'config-outside',
        setup(b) {
          b.onResolve({ filter: /^\.\.\/config\/config\.js$/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined));
        },
      },
    ],
    banner: { js: "'use strict';\nvar __batonModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    logLevel: 'warning',
  });
  if (result.warnings.length > 0) throw new Error('bundling client.cjs: fix the warnings above');
}

await bundleCli();
await bundleClient();

if (process.platform === 'linux' && process.arch === 'x64') {
  // Built aside: tests of the checkout may be loading build/Release/ right now.
  const aside = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-prebuild-'));
  try {
    run('sh', [path.join(root, 'scripts/build-native.sh'), aside]);
    const target = path.join(prebuilds, 'linux-x64-glibc');
    fs.mkdirSync(target, { recursive: true });
    for (const name of ['baton.node', 'baton-exec']) {
      fs.copyFileSync(path.join(aside, 'build/Release', name), path.join(target, name));
    }
    fs.chmodSync(path.join(target, 'baton-exec'), 0o755);
  } finally {
    fs.rmSync(aside, { recursive: true, force: true });
  }
  run(process.execPath, [path.join(root, 'scripts/prebuild-arm64.ts'), '--if-available']);
} else {
  process.stderr.write(`build: no prebuild made on ${process.platform}-${process.arch}; installs will build from source\n`);
}
