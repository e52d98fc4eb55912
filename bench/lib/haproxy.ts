// HAProxy under test: master-worker mode (-W, master CLI on -S), listeners passed to the new
// worker (expose-fd listeners), in front of a plain Node upstream (upstream.ts). Reloaded by the
// master CLI's `reload` (the same as SIGUSR2 to the master). Each response carries the worker's
// pid in x-haproxy-pid, so the probe sees from the outside when the new worker serves.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/helpers/ports.ts';
import { ROOT } from './baton.ts';
import { byHeader, currentIdentity, waitForNewIdentity } from './probe.ts';
import { cpuMsOf, onCleanup, sleep, start, stderrOf, track } from './procs.ts';
import { monotonicMs } from '../../shared/reload-timing.ts';
import type { ReloadSample, Target, Trigger } from './target.ts';

export function haproxyVersion(): string | undefined {
  try {
    return /version (\S+)/.exec(execFileSync('haproxy', ['-v'], { encoding: 'utf8', timeout: 5_000 }))?.[1];
  } catch {
    return undefined;
  }
}

/** One command on the master CLI (non-interactive: it answers, then closes). */
function master(socketPath: string, command: string, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(socketPath, () => s.end(`${command}\n`));
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`master CLI '${command}' timed out`)));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
  });
}

/** `show proc`: the current worker(s), the old ones still finishing, and the master's reload count. */
async function showProc(socketPath: string): Promise<{ workers: number[]; old: number[]; reloads: number }> {
  const out = await master(socketPath, 'show proc');
  const workers: number[] = [];
  const old: number[] = [];
  let reloads = NaN;
  let section = '';
  for (const line of out.split('\n')) {
    const m0 = /^\d+\s+master\s+(\d+)/.exec(line);
    if (m0) reloads = Number(m0[1]);
    if (line.startsWith('#')) {
      section = line.includes('old workers') ? 'old' : line.includes('workers') ? 'workers' : line.includes('programs') ? 'programs' : section;
      continue;
    }
    const m = /^(\d+)\s+worker\b/.exec(line);
    if (m && section === 'workers') workers.push(Number(m[1]));
    if (m && section === 'old') old.push(Number(m[1]));
  }
  return { workers, old, reloads };
}

export async function startHaproxy(): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'haproxy-bench-'));
  fs.chmodSync(dir, 0o700);
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const problems: string[] = [];

  let upstreamPort = 0;
  let upstreamPid = 0;
  const gotPort = new Promise<void>((resolve) => {
    const up = start('upstream', process.execPath, [path.join(ROOT, 'bench/lib/upstream.ts')], {
      onLine: (l) => {
        upstreamPort = Number((JSON.parse(l) as { port: number }).port);
        resolve();
      },
    });
    upstreamPid = up.pid as number;
    onCleanup(() => void up.kill('SIGTERM'));
  });
  await Promise.race([gotPort, sleep(15_000)]);
  if (!upstreamPort) throw new Error('the Node upstream did not start within 15 s');

  const port = await freePort();
  const masterSock = path.join(dir, 'master.sock');
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(
    cfg,
    [
      'global',
      '  master-worker',
      '  nbthread 1',
      '  maxconn 4096',
      `  stats socket ${path.join(dir, 'admin.sock')} mode 600 level admin expose-fd listeners`,
      '  hard-stop-after 15s',
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 30s',
      '  timeout server 30s',
      '  timeout http-keep-alive 30s',
      'frontend fe',
      `  bind 127.0.0.1:${port}`,
      '  http-response set-header x-haproxy-pid %pid',
      '  default_backend app',
      'backend app',
      `  server node1 127.0.0.1:${upstreamPort}`,
      '',
    ].join('\n'),
  );
  const hap = start('haproxy master', 'haproxy', ['-W', '-db', '-S', `${masterSock},mode,600`, '-f', cfg]);
  const exited = new Promise<void>((r) => hap.once('exit', () => r()));
  let stopping = false;
  hap.once('exit', (code, signal) => stopping || problems.push(`haproxy master exited (code ${code}, signal ${signal}): ${stderrOf(hap).slice(-500)}`));
  const trackWorkers = async (): Promise<{ workers: number[]; old: number[]; reloads: number }> => {
    const p = await showProc(masterSock);
    for (const pid of [...p.workers, ...p.old]) track(pid, 'haproxy worker');
    return p;
  };
  onCleanup(async () => {
    await trackWorkers().catch(() => {}); // every worker pid, so the final kill reaches them
    if (hap.exitCode === null && hap.signalCode === null) {
      hap.kill('SIGTERM'); // the master stops its workers, then exits
      await Promise.race([exited, sleep(5_000)]);
    }
  });

  const identify = byHeader('x-haproxy-pid');
  try {
    await currentIdentity(port, identify);
    // The master CLI may answer a little after the first worker serves.
    for (let i = 0; ; i++) {
      const p = await trackWorkers().catch((err: Error) => (i < 50 ? undefined : Promise.reject(err)));
      if (p && p.workers.length > 0) break;
      await sleep(100);
    }
  } catch (err) {
    throw new Error(`HAProxy did not start: ${(err as Error).message}\n${stderrOf(hap).slice(-1500)}`);
  }

  return {
    system: 'haproxy',
    describe:
      'HAProxy reloads the proxy (master-worker, master CLI `reload`): a new worker takes over the listening sockets, the old one soft-stops; ' +
      'the plain Node upstream (bench/lib/upstream.ts) keeps running. Default soft-stop settings (no close-spread-time), nbthread 1. ' +
      '`expose-fd listeners` is set on the stats socket; HAProxy >= 2.x master-worker passes the listeners over its internal socketpair anyway.',
    port,
    identify,
    triggers: ['signal'],
    supervisorCpuMs: () => cpuMsOf(hap.pid as number),
    supervisorPid: () => hap.pid as number,
    // A worker's start is a few ms of parsing the config: all of its CPU counts as serving.
    cpu: { tally: 'x-haproxy-pid', supervisorPid: () => hap.pid as number, upstreamPids: () => [upstreamPid], ready: () => ({ cpuMs: 0, at: 0 }) },
    // SIGUSR2 is the master's reload signal in master-worker mode (SIGHUP only reopens its logs).
    ask: () => void process.kill(hap.pid as number, 'SIGUSR2'),
    // The master re-executes itself on a reload: its CLI refuses connections for a moment meanwhile.
    async reloadsDone() {
      for (let i = 0; ; i++) {
        try {
          return (await trackWorkers()).reloads;
        } catch (err) {
          if (i >= 100) throw err;
          await sleep(50);
        }
      }
    },
    async reload(old: string, trigger: Trigger = 'api', probeIntervalMs = 0): Promise<ReloadSample> {
      const t0 = performance.now();
      const askedAt = monotonicMs();
      const seen = waitForNewIdentity(port, identify, old, t0, 30_000, probeIntervalMs);
      // SIGUSR2 is the master's reload signal in master-worker mode (SIGHUP only reopens its logs).
      if (trigger === 'signal') process.kill(hap.pid as number, 'SIGUSR2');
      else await master(masterSock, 'reload').catch((err: Error) => problems.push(`master CLI reload: ${err.message}`));
      // The master's own view: poll `show proc` until it lists a new current worker.
      let reportedMs = NaN;
      for (;;) {
        const p = await trackWorkers().catch(() => ({ workers: [] as number[], old: [], reloads: NaN }));
        if (p.workers.length > 0 && !p.workers.includes(Number(old))) {
          reportedMs = performance.now() - t0;
          break;
        }
        if (performance.now() - t0 > 30_000) throw new Error('show proc never listed a new worker');
        await sleep(5);
      }
      const probe = await seen;
      track(Number(probe.identity), 'haproxy worker');
      return { probeMs: probe.ms, reportedMs, probeAttempts: probe.attempts, probeErrors: probe.errors, identity: probe.identity, trigger, askedAt };
    },
    problems: () => [...problems],
    async stop() {
      await trackWorkers().catch(() => {});
      stopping = true;
      hap.kill('SIGTERM');
      await Promise.race([exited, sleep(8_000)]);
    },
  };
}
