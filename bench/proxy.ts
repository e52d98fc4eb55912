// bench:proxy — requests/s and p99 latency through Baton's proxy, straight to the upstream, through
// http-proxy (the popular Node proxy library, node-http-proxy 1.18, with a keep-alive agent) and,
// when `haproxy` is on PATH, through HAProxy (one thread, http-reuse always) — all in one run, on
// one machine, interleaved round by round, reported as ratios. The load is wrk (C, one thread).
// Each round also reads /proc for the system's processes (a supervisor and its workers, a master
// and its workers): µs of CPU per request, their threads' sleeps (voluntary context switches) per
// 1,000 requests, and the upstream's µs per request beside it (a proxy that preempts it costs it).
//
//   npm run bench:proxy                                  # 3 rounds × 5 s per system and scenario (~2.5 min)
//   npm run bench:proxy -- --rounds 5 --seconds 8 --connections 64
//   npm run bench:proxy -- --systems direct,baton,baton-nodehttp,haproxy   # baton-nodehttp: the proxy with
//                                         # BATON_PROXY_DOWNSTREAM=node (every request on node:http's server)
//   npm run bench:proxy -- --workers 2 --systems direct,baton,baton-batch,haproxy,haproxy-batch
//                                         # -batch: Baton with cpu-scheduling: batch, HAProxy under chrt -b 0
//
// Every process is tracked by pid and killed by pid at the end (also on error, Ctrl-C, or the
// --max-seconds limit).
//
// Each proxy under test runs in a session of its own (detached), as Baton starts every generation:
// with the kernel's autogroup scheduling on (sched_autogroup_enabled=1, the default of most
// distributions) a session is one CPU share against every other busy session, so on a loaded
// machine a proxy left in the bench's session (with wrk and the upstream) and one in a session of
// its own are not scheduled alike — that, not the supervisor, made a supervised proxy 0.40× a
// plain one under load (README, "Workers").
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { haproxyVersion } from './lib/haproxy.ts';
import { cleanupAll, installGuards, onCleanup, sleep, start, stderrOf, track } from './lib/procs.ts';
import { boxTable, loadLine, machineLine } from './lib/report.ts';
import { machine } from './lib/stats.ts';
import { sampleCpu, type CpuFigures } from './lib/system-cpu.ts';
import { freePort } from '../test/helpers/ports.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NODE = [process.execPath, '--disable-warning=ExperimentalWarning'];
/** A proxy under test gets a session (and so a scheduler autogroup) of its own, as a generation under Baton does (see the top). */
const OWN_SESSION = { detached: true } as const;
/** Smaller young generation: scavenges of ~5 ms instead of ~12 ms, which set the proxy's p99 (README). */
const PROXY_NODE_FLAGS = ['--max-semi-space-size=8'];

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    target: { type: 'string' },
    port: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    systems: { type: 'string', default: 'direct,baton,http-proxy,haproxy' },
    /** Given: the proxy runs under `baton run` with this many workers, HAProxy with as many threads, nginx with as many worker processes. */
    workers: { type: 'string' },
    'max-seconds': { type: 'string', default: '600' },
  },
});

if (values.role === 'upstream') {
  // The upstream: `/` a 25-byte answer, `/64k` 64 KiB (Content-Length) — plain Node, long keep-alive.
  const big = Buffer.alloc(64 * 1024, 'x');
  const small = 'hello from the upstream\n';
  const server = http.createServer((req, res) => {
    if (req.url === '/64k') {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(big);
    } else res.end(small);
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.listen(Number(values.port), '127.0.0.1', () => process.stdout.write('listening\n'));
} else if (values.role === 'http-proxy') {
  // The comparison: node-http-proxy, the way its README sets it up, plus a keep-alive agent
  // (without one it opens a connection per request and loses badly; that would be unfair).
  const { default: httpProxy } = await import('http-proxy');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = httpProxy.createProxyServer({ target: values.target, agent, xfwd: true });
  proxy.on('error', (_err, _req, res) => {
    const r = res as http.ServerResponse;
    if (!r.headersSent) r.writeHead(502);
    r.end();
  });
  const server = http.createServer((req, res) => proxy.web(req, res));
  server.keepAliveTimeout = 60_000;
  server.listen(Number(values.port), '127.0.0.1', () => process.stdout.write('listening\n'));
} else {
  await main();
}

interface Figures {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpu?: CpuFigures;
}

function wrk(port: number, pathName: string, seconds: number, connections: number): Promise<Figures> {
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}${pathName}`], { timeout: (seconds + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(err);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
      const lat = (p: string): number => {
        const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(stdout);
        if (!m) return NaN;
        const v = Number(m[1]);
        return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
      };
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      const errors = non2xx + (sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0);
      resolve({ rps, p50Ms: lat('50'), p99Ms: lat('99'), errors });
    });
  });
}

async function waitFor(port: number, pathName = '/'): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: pathName, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered 200 on port ${port} within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  installGuards(Number(values['max-seconds']) * 1000);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const wanted = new Set(values.systems.split(','));
  const workers = values.workers === undefined ? undefined : Number(values.workers);
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1 && workers <= 64)) throw new Error('--workers must be an integer from 1 to 64');
  const threads = workers ?? 1;
  const haproxy = haproxyVersion();
  if (!haproxy) wanted.delete('haproxy');
  const nginx = nginxVersion();
  if (!nginx) wanted.delete('nginx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-bench-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));

  try {
    // The upstream: this file with --role upstream (plain Node: `/` a short line, `/64k` 64 KiB).
    const upstreamPort = await freePort();
    const upstreamPid = start('upstream', process.execPath, [...NODE.slice(1), fileURLToPath(import.meta.url), '--role', 'upstream', '--port', String(upstreamPort)]).pid as number;
    await waitFor(upstreamPort);
    const ports: Record<string, number> = { direct: upstreamPort };
    /** Each system's first process (a supervisor, a master): it and its descendants are what the system costs. */
    const roots: Record<string, number | undefined> = { direct: upstreamPid };

    if (wanted.has('baton-batch') && workers === undefined) {
      process.stdout.write('baton-batch needs --workers (cpu-scheduling is the supervisor\'s): left out\n');
      wanted.delete('baton-batch');
    }
    if (wanted.has('haproxy-batch') && (!haproxy || spawnSync('chrt', ['--version']).status !== 0)) {
      process.stdout.write('haproxy-batch needs haproxy and chrt (util-linux): left out\n');
      wanted.delete('haproxy-batch');
    }
    if (wanted.has('baton') || wanted.has('baton-nodehttp') || wanted.has('baton-batch')) {
      const config = (port: number): string => stringify({
        listeners: [{ name: 'web', address: `127.0.0.1:${port}` }],
        app: {
          listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'up' }] } },
          clusters: { up: { endpoints: [`127.0.0.1:${upstreamPort}`] } },
          access_log: { enabled: false },
        },
      });
      // The proxy's shipped command line (examples/proxy.yaml), semi-space flag included.
      const proxyCommand = (configFile: string): string[] => [process.execPath, ...NODE.slice(1), ...PROXY_NODE_FLAGS, path.join(ROOT, 'proxy/main.ts'), '--config', configFile];
      /** The proxy as a plain process or under `baton run` (--workers), on a port of its own; `env` on top of the bench's. */
      const startProxy = async (system: string, env: NodeJS.ProcessEnv, supervisorConfig: Record<string, unknown> = {}): Promise<void> => {
        const port = await freePort();
        const own = path.join(dir, system);
        fs.mkdirSync(own, { recursive: true });
        const configFile = path.join(own, 'proxy.yaml');
        fs.writeFileSync(configFile, config(port));
        const command = proxyCommand(configFile);
        if (workers === undefined) {
          const child = start(`${system} proxy`, command[0]!, command.slice(1), { ...OWN_SESSION, env: { ...process.env, ...env } });
          roots[system] = child.pid;
          child.on('exit', (code) => code && process.stderr.write(`${system} proxy exited ${code}: ${stderrOf(child)}\n`));
        } else {
          // Under the supervisor, as examples/proxy.yaml runs it: `workers` processes on one SO_REUSEPORT socket each.
          const sup = path.join(own, 'baton.yaml');
          fs.writeFileSync(sup, stringify({ name: `bench-${system}`, command, listeners: [{ name: 'web', address: `127.0.0.1:${port}` }], workers, 'log-level': 'warn', ...supervisorConfig }));
          const child = start(`${system} supervisor`, process.execPath, [...NODE.slice(1), path.join(ROOT, 'bin/baton'), 'run', '--config', sup], {
            env: { ...process.env, ...env, BATON_RUNTIME_DIR: path.join(own, 'run') },
            onLine: (line) => {
              const pid = /"childPid":(\d+)/.exec(line)?.[1];
              if (pid) track(Number(pid), `${system} proxy worker`);
            },
          });
          roots[system] = child.pid;
          child.on('exit', (code) => code && process.stderr.write(`${system} supervisor exited ${code}: ${stderrOf(child)}\n`));
          onCleanup(async () => {
            if (child.exitCode === null) child.kill('SIGTERM');
            for (let i = 0; i < 100 && child.exitCode === null; i++) await sleep(50);
          });
        }
        ports[system] = port;
      };
      if (wanted.has('baton')) await startProxy('baton', {});
      // The same proxy with every request on node:http's server (no lean downstream path): the path before it, in the same run.
      if (wanted.has('baton-nodehttp')) await startProxy('baton-nodehttp', { BATON_PROXY_DOWNSTREAM: 'node' });
      // SCHED_BATCH: a worker woken by a packet does not preempt what runs on its core (README, "The proxy").
      if (wanted.has('baton-batch')) await startProxy('baton-batch', {}, { 'cpu-scheduling': 'batch' });
      if (workers !== undefined && wanted.has('baton-node') && ports.baton !== undefined) {
        // The same proxy as a plain node process beside it: what running under the supervisor costs or gains.
        const plain = await freePort();
        const plainFile = path.join(dir, 'proxy-plain.yaml');
        fs.writeFileSync(plainFile, config(plain));
        const command = proxyCommand(plainFile);
        roots['baton-node'] = start('baton proxy (plain node)', command[0]!, command.slice(1), OWN_SESSION).pid;
        ports['baton-node'] = plain;
      }
    }
    if (wanted.has('http-proxy')) {
      const port = await freePort();
      roots['http-proxy'] = start('http-proxy', process.execPath, [...NODE.slice(1), fileURLToPath(import.meta.url), '--role', 'http-proxy', '--target', `http://127.0.0.1:${upstreamPort}`, '--port', String(port)], OWN_SESSION).pid;
      ports['http-proxy'] = port;
    }
    // HAProxy as configured by default and, for haproxy-batch, under the same SCHED_BATCH policy as baton-batch.
    for (const system of ['haproxy', 'haproxy-batch'].filter((s) => wanted.has(s))) {
      const port = await freePort();
      const cfg = path.join(dir, `${system}.cfg`);
      fs.writeFileSync(cfg, [
        'global', `  nbthread ${threads}`, '  maxconn 4096',
        'defaults', '  mode http', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', '  option http-keep-alive', '  http-reuse always',
        `frontend web`, `  bind 127.0.0.1:${port}`, '  default_backend up',
        'backend up', `  server u1 127.0.0.1:${upstreamPort}`, '',
      ].join('\n'));
      // chrt execs haproxy: the same pid.
      roots[system] = (system === 'haproxy' ? start(system, 'haproxy', ['-f', cfg, '-db'], OWN_SESSION) : start(system, 'chrt', ['-b', '0', 'haproxy', '-f', cfg, '-db'], OWN_SESSION)).pid;
      ports[system] = port;
    }
    if (wanted.has('nginx')) {
      const port = await freePort();
      const prefix = path.join(dir, 'nginx');
      fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
      const cfg = path.join(prefix, 'nginx.conf');
      // A keep-alive upstream pool, as HAProxy's http-reuse always: nginx's default opens a connection per request.
      fs.writeFileSync(cfg, [
        `worker_processes ${threads};`, 'daemon off;', 'master_process on;', `pid ${path.join(prefix, 'nginx.pid')};`, 'error_log stderr warn;',
        'events { worker_connections 4096; }',
        'http {', '  access_log off;', `  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 256; }`,
        `  server { listen 127.0.0.1:${port}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`, '}', '',
      ].join('\n'));
      const master = start('nginx', 'nginx', ['-p', prefix, '-c', cfg], OWN_SESSION);
      roots.nginx = master.pid;
      // Stopped by its master (SIGTERM: it stops its workers, then exits): the final SIGKILL of the
      // master alone left the workers running, orphaned, one set per bench run, loading the machine.
      onCleanup(async () => {
        if (master.exitCode === null && master.signalCode === null) master.kill('SIGTERM');
        for (let i = 0; i < 100 && master.exitCode === null && master.signalCode === null; i++) await sleep(50);
      });
      ports.nginx = port;
    }
    const systems = ['direct', 'baton', 'baton-nodehttp', 'baton-batch', 'baton-node', 'http-proxy', 'haproxy', 'haproxy-batch', 'nginx'].filter((s) => ports[s] !== undefined);
    for (const s of systems) await waitFor(ports[s]!);

    const m = machine(haproxy);
    process.stdout.write(`${machineLine(m)}\n${loadLine(m)}\n`);
    const scenarios = [
      { path: '/', what: 'GET / (a 24-byte answer)' },
      { path: '/64k', what: 'GET /64k (64 KiB answer)' },
    ];
    const report: Record<string, unknown> = {};
    for (const s of systems) await wrk(ports[s]!, '/', 1, connections); // warm-up (JIT, pools)
    for (const scenario of scenarios) {
      process.stdout.write(`\nwrk -t1 -c${connections} -d${seconds}s, ${scenario.what}, keep-alive; ${rounds} rounds, systems interleaved in each round\n`);
      const results = new Map<string, Figures[]>(systems.map((s) => [s, []]));
      for (let r = 0; r < rounds; r++) {
        for (const s of systems) {
          const sample = sampleCpu(roots[s], upstreamPid);
          const f = await wrk(ports[s]!, scenario.path, seconds, connections);
          const cpu = sample.end(f.rps * seconds);
          if (cpu) f.cpu = cpu;
          results.get(s)!.push(f);
          const cpuText = cpu ? `  ${cpu.cpuUs.toFixed(1)} µs CPU/req, ${cpu.sleeps.toFixed(0)} sleeps/1k${Number.isNaN(cpu.upstreamUs) ? '' : `, upstream ${cpu.upstreamUs.toFixed(1)} µs/req`}` : '';
          process.stdout.write(`round ${r + 1} ${s.padEnd(10)} ${f.rps.toFixed(0).padStart(7)} req/s  p50 ${f.p50Ms.toFixed(2)} ms  p99 ${f.p99Ms.toFixed(2)} ms${cpuText}${f.errors ? `  ${f.errors} errors` : ''}\n`);
        }
      }
      report[scenario.path] = { rounds: Object.fromEntries(results), summary: table(systems, results, haproxy, scenario.what) };
    }
    const out = path.join(ROOT, 'bench/results', `proxy-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify({ machine: m, options: { rounds, seconds, connections }, scenarios: report }, null, 2)}\n`);
    process.stdout.write(`\nwritten to ${path.relative(ROOT, out)}\n`);
  } finally {
    await cleanupAll();
  }
  process.exit(0);
}

function table(systems: string[], results: Map<string, Figures[]>, haproxy: string | undefined, what: string): unknown {
  const summary = systems.map((s) => {
    const fs_ = results.get(s)!;
    const cpu = (key: keyof CpuFigures): number => median(fs_.map((f) => f.cpu?.[key] ?? NaN));
    return {
      system: s,
      rps: median(fs_.map((f) => f.rps)),
      p99: median(fs_.map((f) => f.p99Ms)),
      p50: median(fs_.map((f) => f.p50Ms)),
      errors: fs_.reduce((n, f) => n + f.errors, 0),
      cpuUs: cpu('cpuUs'),
      sleeps: cpu('sleeps'),
      upstreamUs: cpu('upstreamUs'),
    };
  });
  const get = (s: string) => summary.find((x) => x.system === s);
  const baton = get('baton');
  const n = values.workers === undefined ? 1 : Number(values.workers);
  const label: Record<string, string> = {
    direct: 'straight to the upstream',
    baton: values.workers === undefined ? 'Baton proxy' : `Baton proxy (baton run, ${n} worker${n > 1 ? 's' : ''})`,
    'baton-nodehttp': values.workers === undefined ? 'Baton proxy, node:http downstream' : `Baton proxy, node:http downstream (baton run, ${n} worker${n > 1 ? 's' : ''})`,
    'baton-node': 'Baton proxy (plain node, no supervisor)',
    'http-proxy': 'http-proxy 1.18 (Node)',
    'baton-batch': `Baton proxy, cpu-scheduling: batch (baton run, ${n} worker${n > 1 ? 's' : ''})`,
    haproxy: `HAProxy ${haproxy ?? ''} (nbthread ${n})`,
    'haproxy-batch': `HAProxy ${haproxy ?? ''} (nbthread ${n}, chrt -b 0)`,
    nginx: `nginx (worker_processes ${n})`,
  };
  // Ratios are paired within a round (the same moment of a noisy machine), then the median taken.
  const paired = (s: string, key: 'rps' | 'p99Ms', of = 'baton'): string => {
    const mine = results.get(of);
    const theirs = results.get(s)!;
    if (!mine) return '–';
    return `${median(mine.map((f, i) => f[key] / theirs[i]![key])).toFixed(2)}×`;
  };
  const rows = summary.map((x) => [
    label[x.system]!,
    x.rps.toFixed(0),
    x.p50.toFixed(2),
    x.p99.toFixed(2),
    String(x.errors),
    Number.isNaN(x.cpuUs) ? '–' : x.cpuUs.toFixed(1),
    Number.isNaN(x.sleeps) ? '–' : x.sleeps.toFixed(0),
    Number.isNaN(x.upstreamUs) ? '–' : x.upstreamUs.toFixed(1),
    baton ? paired(x.system, 'rps') : '–',
    baton ? paired(x.system, 'p99Ms') : '–',
    ...(results.has('baton-batch') ? [paired(x.system, 'rps', 'baton-batch')] : []),
  ]);
  const headers = ['path', 'req/s (median)', 'p50 ms', 'p99 ms', 'errors', 'CPU µs/req', 'sleeps / 1k req', 'upstream µs/req', 'Baton req/s ÷ this', 'Baton p99 ÷ this', ...(results.has('baton-batch') ? ['Baton batch req/s ÷ this'] : [])];
  process.stdout.write(`\n${what} — medians over the rounds; the ratios are medians of per-round ratios (a req/s ratio above 1 and a p99 ratio below 1 favour Baton).\n`);
  process.stdout.write(`${boxTable(headers, rows)}\n\n`);
  process.stdout.write(`| ${headers.join(' | ')} |\n| ${headers.map(() => '---').join(' | ')} |\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`);
  return summary;
}

/** `nginx -v`'s version, or undefined when nginx is not installed. */
function nginxVersion(): string | undefined {
  try {
    const r = spawnSync('nginx', ['-v'], { encoding: 'utf8', timeout: 5_000 });
    return /nginx\/([\d.]+)/.exec(`${r.stderr}${r.stdout}`)?.[1];
  } catch {
    return undefined;
  }
}
