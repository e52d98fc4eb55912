// bench:balance — `balance: reuseport` (a SO_REUSEPORT socket per worker) against `balance: shared`
// (one socket every worker accepts on), same app, same worker count, interleaved round by round:
// req/s and p99 with wrk (keep-alive, and a new connection per request), and how evenly the
// workers are loaded (requests per worker over connection-per-request traffic).
//
//   npm run bench:balance                       # 4 workers, 3 rounds × 4 s per scenario
//   npm run bench:balance -- --workers 2 --rounds 5 --seconds 5
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { controlRequest } from '../supervisor/cli/control-client.ts';
import type { StatusSnapshot } from '../supervisor/core/supervisor.ts';
import { ROOT } from './lib/baton.ts';
import { cleanupAll, installGuards, onCleanup, sleep, start, track } from './lib/procs.ts';
import { boxTable, loadLine, machineLine } from './lib/report.ts';
import { machine } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    connections: { type: 'string', default: '32' },
    'max-seconds': { type: 'string', default: '600' },
  },
});
const WORKERS = Number(values.workers);
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const NODE = [process.execPath, '--disable-warning=ExperimentalWarning'];
type Balance = 'reuseport' | 'shared';

interface Figures {
  rps: number;
  p99Ms: number;
  errors: number;
}

function wrk(port: number, close: boolean): Promise<Figures> {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}/`];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (SECONDS + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(err);
      const m = /^\s+99%\s+([\d.]+)(us|ms|s)/m.exec(stdout);
      const p99 = m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0) + (sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0);
      resolve({ rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]), p99Ms: p99, errors });
    });
  });
}

/** `n` requests, a new connection each, `concurrency` at a time: how many each pid answered. */
async function spread(port: number, n: number, concurrency = 8): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => {
          const pid = Number(/pid (\d+)/.exec(body)?.[1]);
          counts.set(pid, (counts.get(pid) ?? 0) + 1);
          resolve();
        });
      });
      req.on('error', () => resolve());
    });
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent++ < n) await one();
  }));
  return counts;
}

async function startBaton(balance: Balance, dir: string): Promise<{ port: number; pids: number[] }> {
  const config = path.join(dir, `${balance}.yaml`);
  const runtime = path.join(dir, `run-${balance}`);
  fs.writeFileSync(config, stringify({
    name: `balance-${balance}`,
    command: [...NODE, path.join(ROOT, 'test/fixtures/workers-app.ts')],
    listeners: [{ name: 'http', address: '127.0.0.1:0' }],
    workers: WORKERS,
    balance,
    'ready-timeout': '60s',
    'log-level': 'warn',
  }));
  const child = start(`baton ${balance}`, process.execPath, [...NODE.slice(1), path.join(ROOT, 'bin/baton'), 'run', '--config', config], {
    env: { ...process.env, BATON_RUNTIME_DIR: runtime },
  });
  onCleanup(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    for (let i = 0; i < 100 && child.exitCode === null; i++) await sleep(50);
  });
  const socket = path.join(runtime, `balance-${balance}.sock`);
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      const s = (await controlRequest(socket, 'GET', '/status')).body as StatusSnapshot;
      const g = s.generations.find((x) => x.generation === s.active);
      if (g) {
        const pids = g.workers?.map((w) => w.pid) ?? [g.pid];
        for (const pid of pids) track(pid, `baton ${balance} worker`);
        const address = s.listeners[0]?.address ?? '';
        return { port: Number(address.slice(address.lastIndexOf(':') + 1)), pids };
      }
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`baton (balance: ${balance}) did not serve within 90 s`);
    await sleep(200);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  installGuards(Number(values['max-seconds']) * 1000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'balance-bench-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    const m = machine(undefined);
    process.stdout.write(`${machineLine(m)}\n${loadLine(m)}\n${WORKERS} workers of test/fixtures/workers-app.ts; wrk -t1 -c${CONNECTIONS} -d${SECONDS}s; ${ROUNDS} rounds, balances interleaved\n`);
    const balances: Balance[] = ['shared', 'reuseport'];
    const targets = new Map<Balance, { port: number; pids: number[] }>();
    for (const b of balances) targets.set(b, await startBaton(b, dir));
    const figures = new Map<string, Figures[]>();
    const imbalance = new Map<Balance, number[]>();
    for (const b of balances) await wrk(targets.get(b)!.port, false); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      for (const b of balances) {
        const t = targets.get(b)!;
        for (const close of [false, true]) {
          const f = await wrk(t.port, close);
          const key = `${b} ${close ? 'new-connection' : 'keep-alive'}`;
          figures.set(key, [...(figures.get(key) ?? []), f]);
          process.stdout.write(`round ${r + 1} ${key.padEnd(26)} ${f.rps.toFixed(0).padStart(7)} req/s  p99 ${f.p99Ms.toFixed(2)} ms${f.errors ? `  ${f.errors} errors` : ''}\n`);
        }
        const counts = await spread(t.port, 200 * WORKERS);
        const per = t.pids.map((p) => counts.get(p) ?? 0);
        // Busiest worker ÷ fair share: 1.00 is perfectly even.
        const ratio = Math.max(...per) / (per.reduce((a, x) => a + x, 0) / t.pids.length);
        imbalance.set(b, [...(imbalance.get(b) ?? []), ratio]);
        process.stdout.write(`round ${r + 1} ${`${b} spread`.padEnd(26)} ${per.join(' ')} (busiest ÷ fair share ${ratio.toFixed(2)})\n`);
      }
    }
    const rows: string[][] = [];
    for (const kind of ['keep-alive', 'new-connection']) {
      const shared = figures.get(`shared ${kind}`)!;
      const reuse = figures.get(`reuseport ${kind}`)!;
      rows.push([
        kind,
        median(shared.map((f) => f.rps)).toFixed(0),
        median(reuse.map((f) => f.rps)).toFixed(0),
        `${median(reuse.map((f, i) => f.rps / shared[i]!.rps)).toFixed(2)}×`,
        median(shared.map((f) => f.p99Ms)).toFixed(2),
        median(reuse.map((f) => f.p99Ms)).toFixed(2),
        `${median(reuse.map((f, i) => f.p99Ms / shared[i]!.p99Ms)).toFixed(2)}×`,
      ]);
    }
    const headers = ['traffic', 'shared req/s', 'reuseport req/s', 'reuseport ÷ shared', 'shared p99 ms', 'reuseport p99 ms', 'p99 reuseport ÷ shared'];
    process.stdout.write(`\nmedians over ${ROUNDS} rounds; ratios are medians of per-round ratios\n${boxTable(headers, rows)}\n`);
    process.stdout.write(`busiest worker ÷ fair share (connection per request, median): shared ${median(imbalance.get('shared')!).toFixed(2)}, reuseport ${median(imbalance.get('reuseport')!).toFixed(2)}\n`);
    process.stdout.write(`\n| ${headers.join(' | ')} |\n| ${headers.map(() => '---').join(' | ')} |\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`);
  } finally {
    await cleanupAll();
  }
  process.exit(0);
}

await main();
