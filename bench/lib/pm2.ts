// PM2 in cluster mode for bench:reload: installed from npm into a temp dir by the bench itself (not
// a project dependency), its daemon in a private PM2_HOME, `pm2 start -i N` of a plain Node HTTP
// server (cluster module: the master accepts and hands connections round-robin to the workers),
// reloaded with `pm2 reload` (worker by worker: a new one listening, then the old one SIGINTed).
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/helpers/ports.ts';
import { byBodyGeneration, waitForNewIdentity } from './probe.ts';
import { alive, onCleanup, sleep, track } from './procs.ts';
import type { ReloadSample, Target } from './target.ts';

const PM2_VERSION = '6';

/** Installs PM2 under `dir` (npm), or throws saying why. */
function install(dir: string): string {
  execFileSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', `pm2@${PM2_VERSION}`], { stdio: 'ignore', timeout: 300_000 });
  const bin = path.join(dir, 'node_modules', 'pm2', 'bin', 'pm2');
  if (!fs.existsSync(bin)) throw new Error(`npm installed no ${bin}`);
  return bin;
}

const APP = `// Each process answers with the release it was started with (read from a file at start).
const http = require('node:http');
const fs = require('node:fs');
const release = fs.readFileSync(process.env.RELEASE_FILE, 'utf8').trim();
const server = http.createServer((req, res) => res.end('release ' + release + ' pid ' + process.pid + '\\n'));
server.keepAliveTimeout = 5000;
server.listen(Number(process.env.PORT), '127.0.0.1');
// PM2's graceful stop: finish what is in flight, close keep-alive connections, exit.
process.on('SIGINT', () => { server.close(() => process.exit(0)); server.closeIdleConnections(); setTimeout(() => process.exit(0), 1500).unref(); });
`;

export async function startPm2(workers: number): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm2-bench-'));
  const bin = install(dir);
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'pm2', 'package.json'), 'utf8')).version as string;
  const home = path.join(dir, 'home');
  const app = path.join(dir, 'app.cjs');
  const releaseFile = path.join(dir, 'release');
  fs.writeFileSync(app, APP);
  let release = 1;
  fs.writeFileSync(releaseFile, String(release));
  const port = await freePort();
  const env = { ...process.env, PM2_HOME: home, PORT: String(port), RELEASE_FILE: releaseFile };
  const pm2 = (args: string[], timeoutMs = 120_000): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, [bin, ...args], { env, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`pm2 ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout)));
    });
  const trackAll = async (): Promise<number[]> => {
    const daemon = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'));
    track(daemon, 'pm2 daemon');
    const list = JSON.parse(await pm2(['jlist'])) as { pid: number }[];
    for (const p of list) track(p.pid, 'pm2 worker');
    return [daemon, ...list.map((p) => p.pid)];
  };
  onCleanup(async () => {
    await pm2(['kill'], 20_000).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await pm2(['start', app, '-i', String(workers), '--name', 'bench', '--kill-timeout', '3000']);
  await trackAll();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      await waitForNewIdentity(port, byBodyGeneration, '0', performance.now(), 1_000);
      break;
    } catch {
      await sleep(100);
    }
  }
  return {
    system: 'pm2',
    describe: `PM2 ${version} cluster mode, ${workers} instance${workers > 1 ? 's' : ''} of a plain Node HTTP server (the master accepts, workers get connections round-robin), \`pm2 reload\` (instance by instance)`,
    port,
    identify: byBodyGeneration,
    async reload(old: string, _trigger = 'api', probeIntervalMs = 0): Promise<ReloadSample> {
      release += 1;
      fs.writeFileSync(releaseFile, String(release));
      const t0 = performance.now();
      const cli = pm2(['reload', 'bench']).then(() => performance.now() - t0);
      const seen = waitForNewIdentity(port, byBodyGeneration, old, t0, 60_000, probeIntervalMs);
      const [ms, probe] = await Promise.all([cli, seen]);
      await trackAll();
      return { probeMs: probe.ms, reportedMs: ms, probeAttempts: probe.attempts, probeErrors: probe.errors, identity: probe.identity, trigger: 'api' };
    },
    problems: () => [],
    async stop() {
      const pids = await trackAll().catch(() => []);
      await pm2(['kill'], 20_000).catch(() => {});
      const until = Date.now() + 10_000;
      while (pids.some(alive) && Date.now() < until) await sleep(50);
    },
  };
}
