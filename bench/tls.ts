// bench:tls — TLS through Baton's proxy, HAProxy and nginx, in one run, on one machine, with the
// same certificate (EC P-256, made by `openssl` for the run), the same plain Node upstream and one
// core each (Node's one thread; HAProxy nbthread 1; nginx worker_processes 1), interleaved round
// by round and reported as ratios:
//   - TLS handshakes/s: wrk with `Connection: close`, a full handshake per request (no resumption);
//   - HTTPS req/s over keep-alive connections (wrk);
//   - HTTP/2 req/s (h2load, Debian's nghttp2-client: -c connections × -m streams each).
//
//   npm run bench:tls                                    # 3 rounds × 5 s per system and scenario (~3 min)
//   npm run bench:tls -- --rounds 5 --seconds 8 --systems baton,nginx
//
// Every process is tracked by pid and killed by pid at the end (also on error, Ctrl-C, or --max-seconds).
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { haproxyVersion } from './lib/haproxy.ts';
import { cleanupAll, installGuards, onCleanup, start, stderrOf } from './lib/procs.ts';
import { boxTable, loadLine, machineLine } from './lib/report.ts';
import { machine } from './lib/stats.ts';
import { freePort } from '../test/helpers/ports.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NODE = [process.execPath, '--disable-warning=ExperimentalWarning'];
const PROXY_NODE_FLAGS = ['--max-semi-space-size=8'];
/** Start-up under a loaded machine (three servers and their TLS contexts at once) can take long. */
const START_WAIT_MS = 60_000;

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    port: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    streams: { type: 'string', default: '10' },
    systems: { type: 'string', default: 'baton,haproxy,nginx' },
    'max-seconds': { type: 'string', default: '900' },
  },
});

if (values.role === 'upstream') {
  const small = 'hello from the upstream\n';
  const server = http.createServer((_req, res) => res.end(small));
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.listen(Number(values.port), '127.0.0.1', () => process.stdout.write('listening\n'));
} else {
  await main();
}

interface Figure {
  rps: number;
  errors: number;
  /** 1-minute load average when the run ended (other work on the machine skews the figure). */
  load?: number;
}

function loadNow(): number {
  return Math.round(os.loadavg()[0]! * 100) / 100;
}

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${command}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

async function wrk(port: number, seconds: number, connections: number, close: boolean): Promise<Figure> {
  const out = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, ...(close ? ['-H', 'Connection: close'] : []), `https://127.0.0.1:${port}/`], (seconds + 30) * 1000);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  // With Connection: close, wrk counts the server's close after each answer as a read error; only connect errors and timeouts count then.
  const errors = non2xx + (sock ? Number(sock[1]) + Number(sock[4]) + (close ? 0 : Number(sock[2]) + Number(sock[3])) : 0);
  return { rps, errors };
}

async function h2load(port: number, seconds: number, connections: number, streams: number): Promise<Figure> {
  const out = await run('h2load', ['-c', String(connections), '-m', String(streams), '-D', String(seconds), '--warm-up-time=1', `https://127.0.0.1:${port}/`], (seconds + 40) * 1000);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  if (!/application protocol: h2/i.test(out)) throw new Error(`h2load did not negotiate h2 on port ${port}:\n${out.slice(-800)}`);
  return { rps, errors: m ? Number(m[2]) + Number(m[3]) : NaN };
}

async function waitForTls(system: string, port: number): Promise<void> {
  const deadline = Date.now() + START_WAIT_MS;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => s.end('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
      let text = '';
      s.on('data', (c: Buffer) => (text += c.toString()));
      s.on('close', () => resolve(text.startsWith('HTTP/1.1 200')));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${system}: nothing answered 200 over TLS on port ${port} within ${START_WAIT_MS / 1000} s (1-min load average ${loadNow()})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function waitForHttp(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 20_000;
    const attempt = (): void => {
      const req = http.get({ host: '127.0.0.1', port, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', () => (Date.now() > deadline ? reject(new Error('upstream did not start')) : setTimeout(attempt, 100)));
    };
    attempt();
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function nginxVersion(): string | undefined {
  try {
    return /nginx\/(\S+)/.exec(execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }))?.[1];
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  installGuards(Number(values['max-seconds']) * 1000);
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const streams = Number(values.streams);
  const wanted = new Set(values.systems.split(','));
  const haproxy = haproxyVersion();
  if (!haproxy) wanted.delete('haproxy');
  const nginx = nginxVersion();
  if (!nginx) wanted.delete('nginx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-bench-'));
  fs.chmodSync(dir, 0o700);
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));

  try {
    // One certificate for everyone: EC P-256, self-signed for 127.0.0.1 (the load tools do not verify).
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '7', '-subj', '/CN=bench.test', '-addext', 'subjectAltName=DNS:bench.test,IP:127.0.0.1'], { stdio: 'ignore' });
    const combined = path.join(dir, 'combined.pem');
    fs.writeFileSync(combined, fs.readFileSync(cert, 'utf8') + fs.readFileSync(key, 'utf8'));

    const upstreamPort = await freePort();
    start('upstream', process.execPath, [...NODE.slice(1), fileURLToPath(import.meta.url), '--role', 'upstream', '--port', String(upstreamPort)]);
    await waitForHttp(upstreamPort);
    const ports: Record<string, number> = {};

    if (wanted.has('baton')) {
      const port = await freePort();
      const file = path.join(dir, 'proxy.yaml');
      fs.writeFileSync(file, stringify({
        listeners: [{ name: 'web', address: `127.0.0.1:${port}` }],
        app: {
          listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'up' }], tls: { certificates: [{ cert, key }] }, http2: { max_concurrent_streams: 128 } } },
          clusters: { up: { endpoints: [`127.0.0.1:${upstreamPort}`] } },
          access_log: { enabled: false },
        },
      }));
      const child = start('baton proxy', process.execPath, [...NODE.slice(1), ...PROXY_NODE_FLAGS, path.join(ROOT, 'proxy/main.ts'), '--config', file]);
      child.on('exit', (code) => code && process.stderr.write(`baton proxy exited ${code}: ${stderrOf(child)}\n`));
      ports.baton = port;
    }
    if (wanted.has('haproxy')) {
      const port = await freePort();
      const cfg = path.join(dir, 'haproxy.cfg');
      fs.writeFileSync(cfg, [
        'global', '  nbthread 1', '  maxconn 8192', '  tune.ssl.default-dh-param 2048',
        'defaults', '  mode http', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', '  option http-keep-alive', '  http-reuse always',
        'frontend web', `  bind 127.0.0.1:${port} ssl crt ${combined} alpn h2,http/1.1`, '  default_backend up',
        'backend up', `  server u1 127.0.0.1:${upstreamPort}`, '',
      ].join('\n'));
      start('haproxy', 'haproxy', ['-f', cfg, '-db']);
      ports.haproxy = port;
    }
    if (wanted.has('nginx')) {
      const port = await freePort();
      const cfg = path.join(dir, 'nginx.conf');
      const tmp = path.join(dir, 'nginx');
      fs.mkdirSync(tmp);
      fs.writeFileSync(cfg, [
        'daemon off;', 'master_process on;', 'worker_processes 1;', `pid ${tmp}/nginx.pid;`, `error_log ${tmp}/error.log warn;`, 'user root;',
        'events { worker_connections 8192; }',
        'http {',
        '  access_log off;', `  client_body_temp_path ${tmp}/body;`, `  proxy_temp_path ${tmp}/proxy;`, `  fastcgi_temp_path ${tmp}/fcgi;`, `  uwsgi_temp_path ${tmp}/uwsgi;`, `  scgi_temp_path ${tmp}/scgi;`,
        '  keepalive_requests 1000000;', '  http2_max_concurrent_streams 128;',
        `  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 256; }`,
        `  server { listen 127.0.0.1:${port} ssl http2; ssl_certificate ${cert}; ssl_certificate_key ${key}; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;`,
        '    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }',
        '}', '',
      ].join('\n'));
      start('nginx', 'nginx', ['-c', cfg, '-p', tmp]);
      ports.nginx = port;
    }
    const systems = ['baton', 'haproxy', 'nginx'].filter((s) => ports[s] !== undefined);
    for (const s of systems) await waitForTls(s, ports[s]!);

    const m = machine(haproxy);
    process.stdout.write(`${machineLine(m)}${nginx ? `, nginx ${nginx}` : ''}, ${tlsLine()}\n${loadLine(m)}\n`);
    const scenarios: { name: string; what: string; run: (port: number) => Promise<Figure> }[] = [
      { name: 'handshakes', what: `TLS handshakes/s: wrk -t1 -c${connections} -d${seconds}s, Connection: close (a full handshake per request)`, run: (p) => wrk(p, seconds, connections, true) },
      { name: 'https-keepalive', what: `HTTPS req/s, keep-alive: wrk -t1 -c${connections} -d${seconds}s`, run: (p) => wrk(p, seconds, connections, false) },
      { name: 'http2', what: `HTTP/2 req/s: h2load -c ${connections} -m ${streams} -D ${seconds}`, run: (p) => h2load(p, seconds, connections, streams) },
    ];
    for (const s of systems) await wrk(ports[s]!, 1, connections, false); // warm-up (JIT, pools)
    const report: Record<string, unknown> = {};
    for (const scenario of scenarios) {
      process.stdout.write(`\n${scenario.what}; ${rounds} rounds, systems interleaved in each round\n`);
      const results = new Map<string, Figure[]>(systems.map((s) => [s, []]));
      for (let r = 0; r < rounds; r++) {
        for (const s of systems) {
          const f = { ...(await scenario.run(ports[s]!)), load: loadNow() };
          results.get(s)!.push(f);
          process.stdout.write(`round ${r + 1} ${s.padEnd(8)} ${f.rps.toFixed(0).padStart(7)} /s  load ${f.load.toFixed(2)}${f.errors ? `  ${f.errors} errors` : ''}\n`);
        }
      }
      report[scenario.name] = { what: scenario.what, rounds: Object.fromEntries(results), summary: table(systems, results, { haproxy, nginx }, scenario.what) };
    }
    const out = path.join(ROOT, 'bench/results', `tls-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify({ machine: { ...m, nginx }, options: { rounds, seconds, connections, streams }, scenarios: report }, null, 2)}\n`);
    process.stdout.write(`\nwritten to ${path.relative(ROOT, out)}\n`);
  } finally {
    await cleanupAll();
  }
  process.exit(0);
}

function tlsLine(): string {
  return `OpenSSL ${process.versions.openssl} (Node's), certificate EC P-256, TLS 1.3 negotiated by every client here`;
}

function table(systems: string[], results: Map<string, Figure[]>, versions: { haproxy?: string; nginx?: string }, what: string): unknown {
  const summary = systems.map((s) => {
    const f = results.get(s)!;
    const rps = f.map((x) => x.rps);
    return { system: s, rps: median(rps), min: Math.min(...rps), max: Math.max(...rps), errors: f.reduce((n, x) => n + x.errors, 0) };
  });
  const label: Record<string, string> = { baton: 'Baton proxy (1 thread)', haproxy: `HAProxy ${versions.haproxy ?? ''} (nbthread 1)`, nginx: `nginx ${versions.nginx ?? ''} (1 worker)` };
  // Ratios are paired within a round (the same moment of a noisy machine), then the median taken.
  const paired = (s: string): string => {
    const mine = results.get('baton');
    const theirs = results.get(s)!;
    if (!mine) return '–';
    return `${median(mine.map((f, i) => f.rps / theirs[i]!.rps)).toFixed(2)}×`;
  };
  const rows = summary.map((x) => [label[x.system]!, x.rps.toFixed(0), `${x.min.toFixed(0)}–${x.max.toFixed(0)}`, String(x.errors), paired(x.system)]);
  const headers = ['system', 'per second (median)', 'spread (min–max)', 'errors', 'Baton ÷ this'];
  const loads = systems.flatMap((s) => results.get(s)!.map((f) => f.load ?? NaN));
  process.stdout.write(`\n${what} — medians over the rounds; ratios are medians of per-round ratios (above 1 favours Baton); 1-min load average ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} on ${os.cpus().length} cores during these rounds.\n`);
  process.stdout.write(`${boxTable(headers, rows)}\n\n`);
  process.stdout.write(`| ${headers.join(' | ')} |\n| ${headers.map(() => '---').join(' | ')} |\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`);
  return summary;
}
