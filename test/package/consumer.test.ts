/**
 * Baton as an npm user gets it: `npm pack` once, then a fresh project installs the tarball with no
 * compiler on PATH (the prebuilt addon must load), and uses it the ways the README says — the SDK
 * from ESM and CommonJS, the preload for an unmodified app, `npx baton` run/reload/status/stop with
 * hot restarts under load, a TypeScript consumer under `module: nodenext`, and the global install
 * the Kubernetes Dockerfile does. The tarball's dependencies come from the registry (or npm's cache).
 */
import { execa, execaSync, type Options, type ResultPromise } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { alive, ROOT, waitForGone } from '../helpers/baton.ts';
import { describeCounts, expectAllAnswered, startLoad } from '../helpers/load.ts';
import { freePort, get } from '../helpers/ports.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-consumer-'));
const app = path.join(tmp, 'app');
const runtimeDir = path.join(tmp, 'run');
/** Only node, npm, npx and sh: the install must not need cc, make or python. */
const noCompilerBin = path.join(tmp, 'bin');
let tarball = '';
const BUILD_TOOLS = /^(cc|c\+\+|cpp|gcc.*|g\+\+.*|clang.*|tcc|make|gmake|cmake|ninja|python.*|node-gyp.*|(x86_64|i686)-.*-(gcc|g\+\+|cc|ld|as).*)$/;
const supervisors = new Set<ResultPromise>();
const generationPids = new Set<number>();

/** The environment of a user's shell: no npm_* variables of the npm that runs these tests. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(npm_|BATON_|NODE_OPTIONS$|INIT_CWD$)/.test(k)) env[k] = v;
  }
  return { ...env, PATH: noCompilerBin, BATON_RUNTIME_DIR: runtimeDir, ...extra };
}

function run(command: string, args: string[], options: Options = {}): ResultPromise<{ reject: false }> {
  return execa(command, args, { cwd: app, env: userEnv(), extendEnv: false, reject: false, timeout: 120_000, ...options }) as unknown as ResultPromise<{ reject: false }>;
}

function which(name: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(':')) {
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

/** Writes the consumer's files. */
function write(name: string, text: string): string {
  const file = path.join(app, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  // npm pack runs prepack (npm run build: dist/ and the prebuilds), as a publish would.
  const pack = await execa('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, reject: false, timeout: 240_000 });
  expect(pack.exitCode, pack.stderr).toBe(0);
  tarball = path.join(tmp, (JSON.parse(pack.stdout) as { filename: string }[])[0]!.filename);

  // Every command of this PATH except compilers and build tools, with the Node under test first.
  fs.mkdirSync(noCompilerBin);
  for (const dir of (process.env.PATH ?? '').split(':').filter((d) => d !== '' && fs.existsSync(d))) {
    for (const name of fs.readdirSync(dir)) {
      const link = path.join(noCompilerBin, name);
      if (BUILD_TOOLS.test(name) || fs.existsSync(link) || !which(name, dir)) continue;
      fs.symlinkSync(name === 'node' ? process.execPath : path.join(dir, name), link);
    }
  }

  fs.mkdirSync(app);
  write('package.json', JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
  const typesNode = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['@types/node']!;
  const install = await run('npm', ['install', '--no-audit', '--no-fund', tarball, `@types/node@${typesNode}`], { timeout: 240_000 });
  expect(install.exitCode, `${install.stdout}\n${install.stderr}`).toBe(0);
}, 480_000);

afterAll(async () => {
  for (const s of supervisors) killGroup(s);
  const left = await waitForGone([...generationPids], 5_000);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  await fs.promises.rm(tmp, { recursive: true, force: true });
}, 120_000);

describe('the packed tarball', () => {
  it('holds what a user needs and nothing of the checkout, and publint and arethetypeswrong pass it', async () => {
    const list = await execa('tar', ['-tzf', tarball]);
    const files = list.stdout.split('\n').map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'bin/baton', 'dist/child/index.js', 'dist/child/index.d.ts', 'dist/child/index.js.map', 'prebuilds/linux-x64-glibc/baton.node', 'prebuilds/linux-x64-glibc/baton-exec', 'binding.gyp', 'dist/supervisor/bundle/cli.js', 'dist/supervisor/bundle/client.cjs']));
    expect(files.filter((f) => /^(test|bench|\.ci|examples|node_modules|build)\//.test(f) || f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    // The arm64 prebuild is cross-built when the cross compiler is here (test/package/arm64-prebuild.test.ts runs it).
    if (which('aarch64-linux-gnu-gcc', process.env.PATH ?? '')) {
      expect(files).toEqual(expect.arrayContaining(['prebuilds/linux-arm64-glibc/baton.node', 'prebuilds/linux-arm64-glibc/baton-exec']));
    }

    const publint = await execa(process.execPath, [path.join(ROOT, 'node_modules/publint/src/cli.js'), 'run', tarball, '--strict'], { reject: false });
    expect(publint.exitCode, publint.stdout + publint.stderr).toBe(0);
    // esm-only: the package is ESM; CommonJS reaches it through require(esm) (Node >= 22.12), which
    // attw's node16-from-CJS view predates, and node10 resolution knows no `exports`.
    const attw = await execa(process.execPath, [path.join(ROOT, 'node_modules/@arethetypeswrong/cli/dist/index.js'), tarball, '--profile', 'esm-only', '--format', 'ascii'], { reject: false });
    expect(attw.exitCode, attw.stdout + attw.stderr).toBe(0);
  }, 120_000);

  it('installed with no compiler on PATH: the prebuilt addon was used, and neither tsx nor esbuild came along', () => {
    for (const tool of ['cc', 'gcc', 'g++', 'make', 'python3', 'python']) expect(which(tool, noCompilerBin), tool).toBeUndefined();
    expect(which('node', noCompilerBin)).toBeDefined();
    const pkg = path.join(app, 'node_modules/baton-supervisor');
    expect(fs.existsSync(path.join(pkg, 'build'))).toBe(false);
    expect(fs.existsSync(path.join(app, 'node_modules/tsx'))).toBe(false);
    expect(fs.existsSync(path.join(app, 'node_modules/esbuild'))).toBe(false);
  });
});

const SDK_BODY = `
const hits = stats.counter('consumer.hits');
const server = http.createServer((req, res) => {
  hits.inc();
  res.end(KIND + ' generation ' + generation().generation + ' pid ' + process.pid + '\\n');
});
listen({ name: 'http', address: '127.0.0.1:' + process.env.APP_PORT }, server).then(() => ready());
`;
const SDK_APPS = {
  esm: `import http from 'node:http';\nimport { generation, listen, ready, stats } from 'baton-supervisor/child';\nconst KIND = 'esm';\n${SDK_BODY}`,
  cjs: `const http = require('node:http');\nconst { generation, listen, ready, stats } = require('baton-supervisor/child');\nconst KIND = 'cjs';\n${SDK_BODY}`,
};

describe('the SDK', () => {
  for (const kind of ['esm', 'cjs'] as const) {
    it(`${kind === 'esm' ? 'an ES module' : 'a CommonJS module (require of ESM)'} imports baton-supervisor/child and serves without Baton`, async () => {
      const file = write(`sdk-app.${kind === 'esm' ? 'mjs' : 'cjs'}`, SDK_APPS[kind]);
      const port = await freePort();
      const proc = run('node', [file], { env: userEnv({ APP_PORT: String(port) }) });
      try {
        const answer = await poll(() => within(get({ port }), 2_000), 15_000);
        expect(answer.body).toMatch(new RegExp(`^${kind} generation 0 pid ${proc.pid}`));
      } finally {
        proc.kill('SIGTERM');
        expect((await proc).exitCode, (await proc).stderr).toBe(0);
      }
    });
  }

  it('baton-supervisor/testing and the SDK type-check under module nodenext, and a wrong call is an error', async () => {
    write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'nodenext', strict: true, noEmit: true, types: ['node'] }, files: ['typed.ts'] }));
    write('typed.ts', `import http from 'node:http';
import { generation, listen, onDrain, ready, stats, type GenerationInfo } from 'baton-supervisor/child';
import { StandaloneRuntime } from 'baton-supervisor/testing';
const info: GenerationInfo = generation();
const server: http.Server = await listen({ name: 'http', address: '127.0.0.1:0' }, http.createServer());
stats.counter('x').inc();
onDrain(async () => {});
ready();
console.log(info.generation, server.listening, typeof StandaloneRuntime);
`);
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    const good = await run('node', [tsc, '-p', 'tsconfig.json']);
    expect(good.exitCode, good.stdout).toBe(0);

    write('typed.ts', `import { listen } from 'baton-supervisor/child';\nawait listen(8080);\n`);
    const bad = await run('node', [tsc, '-p', 'tsconfig.json']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stdout).toMatch(/^typed\.ts\(2,\d+\): error TS2345: .*number/m);
    expect(bad.stdout).not.toMatch(/node_modules/);
  }, 120_000);
});

describe('npx baton', () => {
  /** `npx baton run …` in the consumer project, with its generations tracked for cleanup. */
  async function supervise(name: string, port: number, command: string[], env: Record<string, string> = {}, flags: string[] = []) {
    // A process group of its own (npx, sh, the supervisor), so cleanup can end all of it.
    const proc = run('npx', ['baton', 'run', '--name', name, '--listen', `127.0.0.1:${port}`, '--drain-timeout', '5s', ...flags, '--', ...command], {
      env: userEnv(env),
      timeout: 180_000,
      detached: true,
    });
    supervisors.add(proc);
    // Serving: a GET answered (a connect alone proves nothing: the supervisor's socket accepts it).
    const served = await poll(() => within(get({ port }), 2_000), 30_000).catch((err: unknown) => err as Error);
    if (served instanceof Error) {
      killGroup(proc);
      const r = await proc;
      throw new Error(`npx baton run never served on ${port} (${served.message}):\n${String(r.stdout)}\n${String(r.stderr)}`);
    }
    // Wrapped: returned bare, the subprocess (a thenable) would make this wait for its exit.
    return { proc };
  }

  async function baton(...args: string[]) {
    const r = await run('npx', ['baton', ...args]);
    return r;
  }

  async function status(name: string) {
    const r = await baton('status', '--name', name, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as {
      pid: number;
      active: number | null;
      generations: { generation: number; pid: number; state: string }[];
      standbys?: { pid: number; worker: number; waiting: boolean }[];
    };
    for (const g of s.generations) generationPids.add(g.pid);
    return s;
  }

  it('run, reload under load with no failed request, status, stop', async () => {
    const port = await freePort();
    const name = `consumer-${process.pid}`;
    const { proc: sup } = await supervise(name, port, ['node', 'sdk-app.mjs'], { APP_PORT: String(port) });
    const first = await status(name);
    expect(first.active).toBe(1);
    // `--config` names the instance by its file: the installed client imports dist/'s config
    // module only then, from beside its one-file bundle.
    write('baton.yaml', `name: ${name}\ncommand: [node, sdk-app.mjs]\nlisteners:\n  - name: http\n    address: 127.0.0.1:${port}\n`);
    const byConfig = await baton('status', '--config', 'baton.yaml', '--json');
    expect(byConfig.exitCode, byConfig.stderr).toBe(0);
    expect(JSON.parse(byConfig.stdout)).toMatchObject({ instance: name, pid: first.pid, active: 1 });
    // The installed bin runs the bundled command line (dist/supervisor/bundle/): what it finds by
    // its own location — here the memory dashboard's script beside dist/supervisor/control/ — is found.
    const script = await get({ socketPath: path.join(runtimeDir, `${name}.sock`) }, '/dashboard/app.js');
    expect(script.status, script.body).toBe(200);
    expect(script.body).toBe(fs.readFileSync(path.join(ROOT, 'supervisor/control/dashboard-app.js'), 'utf8'));

    const load = startLoad({ port }, { keepAlive: 2, newConnection: 2, maxMs: 90_000 });
    for (let i = 0; i < 3; i += 1) {
      await load.progress(20);
      const reload = await baton('reload', '--name', name);
      expect(reload.exitCode, reload.stderr).toBe(0);
    }
    await load.progress(20);
    const counts = await load.stop();
    expectAllAnswered(counts);
    expect(counts.bodies.some((b) => b.startsWith('esm generation 4 ')), describeCounts(counts)).toBe(true);

    const after = await status(name);
    expect(after.active).toBe(4);
    expect(alive(first.pid)).toBe(true);
    const stop = await baton('stop', '--name', name);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect((await sup).exitCode).toBe(0);
    expect(await waitForGone([...generationPids], 10_000)).toEqual([]);
  }, 240_000);

  it('--standby: the standby preload runs from dist/, and a reload wakes it as generation 2', async () => {
    const port = await freePort();
    const name = `consumer-standby-${process.pid}`;
    const { proc: sup } = await supervise(name, port, ['node', 'sdk-app.mjs'], { APP_PORT: String(port) }, ['--standby']);
    // Waiting means it imported dist/'s standby preload, the SDK and the stats modules it loads ahead.
    const standby = await poll(async () => {
      const waiting = (await status(name)).standbys?.find((x) => x.waiting);
      if (!waiting) throw new Error(`no waiting standby for ${name}`);
      return waiting;
    }, 30_000);
    const reload = await baton('reload', '--name', name);
    expect(reload.exitCode, reload.stderr).toBe(0);
    expect((await status(name)).generations.find((g) => g.generation === 2)?.pid).toBe(standby.pid);
    expect((await within(get({ port }), 2_000)).body).toMatch(/^esm generation 2 /);
    const stop = await baton('stop', '--name', name);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect((await sup).exitCode).toBe(0);
    expect(await waitForGone([...generationPids, standby.pid], 10_000)).toEqual([]);
  }, 120_000);

  it('an unmodified app gets the held socket through --import baton-supervisor/child/register', async () => {
    write('plain-app.cjs', `const http = require('node:http');
http.createServer((req, res) => res.end('plain ' + process.pid + '\\n')).listen(Number(process.env.APP_PORT), '127.0.0.1');
`);
    const port = await freePort();
    const name = `consumer-preload-${process.pid}`;
    const { proc: sup } = await supervise(name, port, ['node', '--import', 'baton-supervisor/child/register', 'plain-app.cjs'], { APP_PORT: String(port) });
    const before = await status(name);
    const reload = await baton('reload', '--name', name);
    expect(reload.exitCode, reload.stderr).toBe(0);
    const after = await status(name);
    const active = after.generations.find((g) => g.generation === after.active)!;
    expect(after.active).toBe(2);
    expect((await get({ port })).body).toBe(`plain ${active.pid}\n`);
    expect(before.generations[0]!.pid).not.toBe(active.pid);
    expect((await baton('stop', '--name', name)).exitCode).toBe(0);
    expect((await sup).exitCode).toBe(0);
  }, 180_000);

  it('a CommonJS SDK app runs supervised: it says hello and is generation 1', async () => {
    const port = await freePort();
    const name = `consumer-cjs-${process.pid}`;
    const { proc: sup } = await supervise(name, port, ['node', 'sdk-app.cjs'], { APP_PORT: String(port) });
    expect((await get({ port })).body).toMatch(/^cjs generation 1 pid \d+\n$/);
    await status(name);
    expect((await baton('stop', '--name', name)).exitCode).toBe(0);
    expect((await sup).exitCode).toBe(0);
  }, 180_000);
});

describe('the bin, on what a user may have', () => {
  it('baton dev serves an unmodified app from the installed package, generation 1 booted ahead as a standby', async () => {
    write(
      'dev-app.mjs',
      "import http from 'node:http';\n" +
        "const woken = globalThis[Symbol.for('baton.standby.woken')] !== undefined;\n" +
        "http.createServer((req, res) => res.end(woken ? 'from a standby\\n' : 'cold\\n')).listen(Number(process.env.PORT));\n",
    );
    const port = await freePort();
    const proc = run('npx', ['baton', 'dev', 'dev-app.mjs'], { env: userEnv({ PORT: String(port) }), detached: true, timeout: 60_000 });
    supervisors.add(proc);
    const answer = await poll(() => within(get({ port }), 2_000), 30_000).catch((err: unknown) => err as Error);
    // Ctrl-C as a terminal sends it: to the whole foreground group (npx, sh, baton).
    if (proc.pid !== undefined) process.kill(-proc.pid, 'SIGINT');
    const r = await proc;
    expect(answer instanceof Error ? answer.message : answer.body, `${r.stdout}\n${r.stderr}`).toBe('from a standby\n');
    expect(r.stdout).toMatch(/│ stopped$/m);
  }, 60_000);

  it('baton dev on a .ts app, with tsx not installed (an optional peer), says how to get it', async () => {
    write('dev-app.ts', "const port: number = 0;\nconsole.log(port);\n");
    const r = await run('npx', ['baton', 'dev', 'dev-app.ts']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('baton: baton dev: dev-app.ts is TypeScript, which baton dev runs through tsx, and tsx is not installed: npm install --save-dev tsx');
  }, 60_000);

  // The machine's own node, when it is older than 22 (this project's machines ship Node 20).
  const systemNode = (process.env.PATH ?? '')
    .split(':')
    .filter((d) => !d.includes(`${path.sep}.node${path.sep}`))
    .map((d) => path.join(d, 'node'))
    .find((p) => fs.existsSync(p));
  const systemMajor = systemNode ? Number(execaSync(systemNode, ['-p', 'process.versions.node.split(".")[0]']).stdout) : 0;
  it.skipIf(!systemNode || systemMajor >= 22)(`an old Node (${systemNode ?? 'none'}, major ${systemMajor}) gets one line and exit 2 (skipped without a Node < 22 on PATH)`, async () => {
    const r = await execa(systemNode!, [path.join(app, 'node_modules/baton-supervisor/bin/baton'), 'version'], { reject: false });
    const version = execaSync(systemNode!, ['-v']).stdout.trim();
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`Baton needs Node >= 22.12; this is ${version}`);
  });
});

describe('examples/kubernetes/Dockerfile', () => {
  it("its RUN lines install the tarball globally into a prefix, and the proxy path deployment.yaml runs exists there", async () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'examples/kubernetes/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
    const lines = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const args = Object.fromEntries(lines.flatMap((l) => [...l.matchAll(/^ARG (\w+)=(\S+)$/g)].map((m) => [m[1]!, m[2]!])));
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(args.BATON_VERSION, 'the Dockerfile names the version package.json has').toBe(version);
    // COPY SRC DEST: the build context's tarball lands at DEST; here it is a copy in a temp dir.
    const copy = lines.find((l) => l.startsWith('COPY '))!.split(/\s+/);
    expect(copy[1]!.replace('${BATON_VERSION}', version)).toBe(path.basename(tarball));
    const dest = copy[2]!;
    const copied = path.join(tmp, 'context', path.basename(dest));
    fs.mkdirSync(path.dirname(copied), { recursive: true });
    fs.copyFileSync(tarball, copied);
    // The image's npm prefix is /usr/local; here it is a temp directory.
    const prefix = path.join(tmp, 'prefix');
    const runs = lines.filter((l) => l.startsWith('RUN ')).map((l) => l.slice(4).replaceAll(dest, copied).replaceAll('/usr/local', prefix));
    expect(runs.length).toBeGreaterThan(0);
    for (const script of runs) {
      const r = await execa('sh', ['-ec', script], {
        cwd: tmp,
        env: userEnv({ PATH: `${path.join(prefix, 'bin')}:${noCompilerBin}`, npm_config_prefix: prefix }),
        extendEnv: false,
        reject: false,
        timeout: 240_000,
      });
      expect(r.exitCode, `${script}\n${r.stdout}\n${r.stderr}`).toBe(0);
      if (script.includes('baton version')) expect(r.stdout).toMatch(new RegExp(`^baton ${version.replaceAll('.', '\\.')} `, 'm'));
    }
    const [configMap] = parseAllDocuments(fs.readFileSync(path.join(ROOT, 'examples/kubernetes/deployment.yaml'), 'utf8')).map((d) => d.toJS());
    const config = parseAllDocuments(configMap.data['baton.yaml'] as string)[0]!.toJS() as { command: string[] };
    const main = config.command.find((a) => a.endsWith('/proxy/main.js'))!;
    expect(main.startsWith('/usr/local/')).toBe(true);
    expect(fs.existsSync(main.replace('/usr/local', prefix))).toBe(true);
  }, 300_000);
});

/** SIGKILL to a detached child's whole group: the supervisor's generations die with it (PDEATHSIG). */
function killGroup(proc: ResultPromise): void {
  try {
    if (proc.pid !== undefined) process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<T>((_r, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

async function poll<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
