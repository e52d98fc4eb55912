/**
 * `npm run bench:proxy-start`: how fast a proxy generation is ready (issue #19: ≤ 250 ms p50),
 * and what its start-up imports cost.
 * - Ready: Baton runs the proxy (proxy/main.ts) on the config of examples/proxy.yaml without TLS
 *   (an HTTP listener with routes and a health-checked cluster, a TCP listener, the admin
 *   listener on a Unix socket, access log on), one worker, in front of a plain Node upstream;
 *   `--reloads` reloads by POST /reload, each generation's readyMs (spawned → ready, as the
 *   supervisor sees it) and the SDK's marks (shared/reload-timing.ts): Node boot, the import of
 *   main.ts and all it loads up to the first listen(), the listens, the ready message.
 * - Imports: a fresh `node` per sample times each top-level piece of the proxy's start-up in the
 *   order main.ts needs them (each with whatever it shares with the ones before already loaded),
 *   with Baton's compile cache warm, as a generation has it from the second on.
 *
 * - Modes, one Baton instance each, the same reloads: `cold` (each generation starts Node) and
 *   `standby` (`standby: true`: each reload wakes a process booted ahead, Node and the SDK loaded).
 *
 *   npm run bench:proxy-start                      # 30 reloads per mode, 10 import samples (~2 min)
 *   npm run bench:proxy-start -- --reloads 60 --import-samples 20
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ReloadTiming } from '../shared/reload-timing.ts';
import { controlRequest } from '../supervisor/cli/control-client.ts';
import { ROOT, startBaton } from './lib/baton.ts';
import { installGuards, onCleanup, sleep, start, runBench } from './lib/procs.ts';
import { boxTable, loadLine, machineLine } from './lib/report.ts';
import { machine, summarize, type Summary } from './lib/stats.ts';
import { freePort } from '../test/helpers/ports.ts';

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    /** Extra Node flags for the proxy (e.g. --cpu-prof --cpu-prof-dir=DIR to see where its start goes). */
    'node-flags': { type: 'string', default: '' },
    reloads: { type: 'string', default: '30' },
    'import-samples': { type: 'string', default: '10' },
    'gap-ms': { type: 'string', default: '300' },
    /** cold (each generation starts Node), standby (`standby: true`: a process booted ahead is woken). */
    modes: { type: 'string', default: 'cold,standby' },
    'max-seconds': { type: 'string', default: '900' },
  },
});

/** What main.ts loads, in the order it needs it; each figure is the time to import that piece after the ones above. */
const PIECES: { name: string; specifier: string }[] = [
  { name: 'pino (main.ts’s logger)', specifier: 'pino' },
  { name: 'the SDK (child/index.ts)', specifier: '../child/index.ts' },
  { name: 'config-load.ts (yaml and valibot only when a file is checked in full)', specifier: '../proxy/config/config-load.ts' },
  { name: 'the proxy (proxy.ts, undici’s Pool and the rest)', specifier: '../proxy/proxy.ts' },
  // What a generation loads only for a file no generation has checked yet (config-cache.ts): after the rest.
  { name: '(a file not checked before) yaml', specifier: 'yaml' },
  { name: '(a file not checked before) the schema: valibot', specifier: '../proxy/config/config-schema.ts' },
];

if (values.role === 'imports') {
  // One sample: a fresh process (the compile cache is on through NODE_COMPILE_CACHE, as Baton sets it).
  const out: number[] = [];
  for (const piece of PIECES) {
    const t0 = performance.now();
    await import(piece.specifier.startsWith('.') ? new URL(piece.specifier, import.meta.url).href : piece.specifier);
    out.push(performance.now() - t0);
  }
  process.stdout.write(`${JSON.stringify({ pieces: out, booted: performance.nodeTiming.bootstrapComplete, total: performance.now() })}\n`);
  process.exit(0);
}

const RELOADS = Number(values.reloads);
const IMPORT_SAMPLES = Number(values['import-samples']);
const GAP_MS = Number(values['gap-ms']);
const MODES = values.modes.split(',').map((m) => m.trim());
for (const m of MODES) if (m !== 'cold' && m !== 'standby') throw new Error(`--modes: '${m}' is neither cold nor standby`);
installGuards(Number(values['max-seconds']) * 1000);
const log = (s: string): void => void process.stderr.write(`${s}\n`);

function importSample(cacheDir: string): Promise<{ pieces: number[]; booted: number; total: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', path.join(ROOT, 'bench/proxy-start.ts'), '--role', 'imports'],
      { env: { ...process.env, NODE_COMPILE_CACHE: cacheDir }, timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`import sample failed: ${stderr || err.message}`)) : resolve(JSON.parse(stdout) as { pieces: number[]; booted: number; total: number })),
    );
  });
}

async function upstream(): Promise<number> {
  let port = 0;
  await new Promise<void>((resolve, reject) => {
    const up = start('upstream', process.execPath, [path.join(ROOT, 'bench/lib/upstream.ts')], {
      onLine: (l) => {
        port = Number((JSON.parse(l) as { port: number }).port);
        resolve();
      },
    });
    up.once('exit', (code) => reject(new Error(`the upstream exited (${code})`)));
    onCleanup(() => void up.kill('SIGTERM'));
  });
  return port;
}

/** `RELOADS` reloads of one Baton instance running the proxy: each generation's readyMs and timing. */
async function measure(mode: string, tmp: string, up: number): Promise<{ readies: number[]; timings: ReloadTiming[] }> {
  const admin = path.join(tmp, `admin-${mode}.sock`);
  const target = await startBaton('reload', {
    name: `bench-proxy-${mode}`,
    // The proxy reads its `app:` from the same file as Baton (examples/proxy.yaml's way).
    command: (file) => [
      process.execPath,
      '--disable-warning=ExperimentalWarning',
      '--max-semi-space-size=8',
      ...values['node-flags'].split(' ').filter(Boolean),
      path.join(ROOT, 'proxy/main.ts'),
      '--config',
      file,
    ],
    config: {
      ...(mode === 'standby' ? { standby: true } : {}),
      listeners: [
        { name: 'http', address: '127.0.0.1:0' },
        { name: 'raw', address: `127.0.0.1:${await freePort()}` },
        { name: 'admin', address: `unix:${admin}`, mode: '0600' },
      ],
      app: {
        listeners: {
          http: {
            protocol: 'http',
            health_path: '/healthz',
            routes: [
              { match: { prefix: '/static/' }, direct_response: { status: 200, body: 'static answer\n' } },
              { match: { host: 'api.example.com', prefix: '/v1/' }, cluster: 'api', prefix_rewrite: '/' },
              { match: { prefix: '/' }, cluster: 'app' },
            ],
          },
          raw: { protocol: 'tcp', cluster: 'app' },
        },
        clusters: {
          app: {
            endpoints: [`127.0.0.1:${up}`],
            lb_policy: 'least_request',
            connect_timeout: '1s',
            timeout: '15s',
            health_check: { path: '/', interval: '2s', timeout: '1s', healthy_threshold: 2, unhealthy_threshold: 2 },
          },
          api: { endpoints: [`unix:${path.join(tmp, `api-${mode}.sock`)}`] },
        },
        admin: { listener: 'admin' },
        access_log: { enabled: true, path: 'stdout' },
      },
    },
  });
  const readies: number[] = [];
  const timings: ReloadTiming[] = [];
  for (let i = 0; i < RELOADS; i++) {
    const r = await controlRequest(target.controlSocket!, 'POST', '/reload', 60_000);
    const body = r.body as { ok: boolean; readyMs: number; timing?: ReloadTiming; error?: { message: string } };
    if (!body.ok) throw new Error(`reload failed: ${body.error?.message}`);
    readies.push(body.readyMs);
    if (body.timing) timings.push(body.timing);
    if ((i + 1) % 10 === 0) log(`${mode}: ${i + 1}/${RELOADS} reloads`);
    await sleep(GAP_MS);
  }
  await target.stop();
  return { readies, timings };
}

async function main(): Promise<void> {
  const m = machine();
  log(`machine: ${machineLine(m)}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-proxy-start-'));
  onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const up = await upstream();
  const runs = new Map<string, { readies: number[]; timings: ReloadTiming[] }>();
  for (const mode of MODES) runs.set(mode, await measure(mode, tmp, up));

  // Imports with the compile cache warm: the first sample fills it.
  const cache = path.join(tmp, 'compile-cache');
  await importSample(cache);
  const samples: { pieces: number[]; booted: number; total: number }[] = [];
  for (let i = 0; i < IMPORT_SAMPLES; i++) samples.push(await importSample(cache));

  const ms = (s: Summary): string => (s.samples === 0 ? '' : `${s.median.toFixed(1)} ms / ${s.p99.toFixed(1)} ms`);
  const step = (timings: ReloadTiming[], f: (t: ReloadTiming) => number | undefined): Summary => summarize(timings.map(f).filter((v): v is number => v !== undefined));
  // A woken standby booted long before its reload: its Node start is not on the reload's path.
  const cold = (t: ReloadTiming): boolean => t.child !== undefined && t.child.woken === undefined;
  const steps: [string, (t: ReloadTiming) => number | undefined][] = [
    ['spawn → Node starts (exec shim, exec node)', (t) => (cold(t) ? t.child!.start - t.spawned : undefined)],
    ['Node boot', (t) => (cold(t) ? t.child!.booted - t.child!.start : undefined)],
    ['standby woken (spawn → it has the environment)', (t) => (t.child?.woken !== undefined ? t.child.woken - t.spawned : undefined)],
    ['import and start-up until the first listen()', (t) => (t.child?.listenCalled !== undefined ? t.child.listenCalled - (t.child.woken ?? t.child.booted) : undefined)],
    ['listen() of every listener', (t) => (t.child?.listening !== undefined && t.child.listenCalled !== undefined ? t.child.listening - t.child.listenCalled : undefined)],
    ['ready message (→ the supervisor has it)', (t) => (t.child?.listening !== undefined ? t.readyReceived - t.child.listening : undefined)],
  ];
  const modeRuns = [...runs];
  const rows: string[][] = [
    ...steps.map(([name, f]) => [name, ...modeRuns.map(([, r]) => ms(step(r.timings, f)))]),
    ['= spawned → ready (readyMs)', ...modeRuns.map(([, r]) => ms(summarize(r.readies)))],
    ['CPU the generation used until ready (user + system; a standby\'s from its boot)', ...modeRuns.map(([, r]) => ms(step(r.timings, (t) => t.child?.cpuMs)))],
  ];
  console.log(`\n# Proxy start-up — ${RELOADS} generations per mode (${MODES.join(', ')}), ${IMPORT_SAMPLES} import samples\n`);
  console.log(`Machine: ${machineLine(m)}`);
  console.log(loadLine(m));
  console.log(`\n${boxTable(['Proxy generation start (p50 / p99)', ...MODES], rows)}\n`);
  console.log(['| Proxy generation start (p50 / p99) | ' + MODES.join(' | ') + ' |', `|---|${MODES.map(() => '---:|').join('')}`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n');
  const pieceRows = PIECES.map((p, i) => [p.name, ms(summarize(samples.map((s) => s.pieces[i]!)))]);
  pieceRows.push(['Node boot (for scale)', ms(summarize(samples.map((s) => s.booted)))]);
  console.log(`${boxTable(['Start-up imports, each after those above (p50 / p99)', 'ms'], pieceRows)}\n`);
  for (const [mode, r] of modeRuns) {
    console.log(
      `${mode}: proxy ready (spawned → ready) ${summarize(r.readies).median.toFixed(0)} ms p50 (target ≤ 250 ms), using ${step(r.timings, (t) => t.child?.cpuMs).median.toFixed(0)} ms of CPU p50 ` +
        '(on a machine with other work, the wall time is that CPU plus the waits for a core)',
    );
  }
}

await runBench(main);
