import { execa, type ResultPromise } from 'execa';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import type { StatusSnapshot } from '../../supervisor/core/supervisor.ts';
import type { BatonEventType, PublishedEvent } from '../../supervisor/core/events.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/baton');
export const NODE_FLAGS = ['--disable-warning=ExperimentalWarning'];

/** `[node, flags…, test/fixtures/NAME]`: a fixture run by the Node under test. */
export function fixture(name: string, ...args: string[]): string[] {
  return [process.execPath, ...NODE_FLAGS, path.join(ROOT, 'test/fixtures', name), ...args];
}

/** An event as a test sees it: with the pid of the supervisor that published it. */
export type SeenEvent<T extends BatonEventType = BatonEventType> = Extract<PublishedEvent, { type: T }> & { supervisor: number };

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

const live = new Set<BatonProcess>();

/** A supervisor started by a test: real process, its own temp dir, runtime dir and config file. */
export class BatonProcess {
  readonly dir: string;
  /** Where this supervisor's stats segments live: a directory of its own under /dev/shm. */
  readonly statsDir: string;
  readonly configPath: string;
  readonly socketPath: string;
  readonly proc: ResultPromise;
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  /** Every generation pid the supervisor reported, so cleanup can make sure none survives. */
  readonly childPids = new Set<number>();
  /** Supervisors `baton upgrade` started after this one: they log on the same stdout. */
  readonly successors = new Set<number>();
  private readonly waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  /** Every event read from GET /events, in order, from this supervisor and any successor on its control socket. */
  readonly events: SeenEvent[] = [];
  private readonly eventWaiters: { match: (e: SeenEvent) => boolean; resolve: (e: SeenEvent) => void }[] = [];
  /** The last event number seen from each supervisor pid. */
  private readonly lastSeq = new Map<number, number>();
  private subscribed = false;
  private gone = false;
  exited: Promise<{ exitCode?: number; signal?: string }>;

  /** `config` may be a function of the test's temp dir (for socket paths inside it). */
  constructor(
    config: Record<string, unknown> | ((dir: string) => Record<string, unknown>),
    extraArgs: string[] = [],
    env: Record<string, string> = {},
    /** A launcher the supervisor runs under (e.g. systemd-socket-activate with its options). */
    wrap: string[] = [],
  ) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-test-'));
    fs.chmodSync(this.dir, 0o700);
    this.statsDir = fs.mkdtempSync('/dev/shm/baton-test-');
    const resolved = typeof config === 'function' ? config(this.dir) : config;
    this.configPath = path.join(this.dir, 'baton.yaml');
    const own = resolved['control-socket'];
    this.socketPath = typeof own === 'string' ? own : path.join(this.dir, 'run', `${String(resolved.name ?? 'baton')}.sock`);
    this.writeConfig(resolved);
    const command = [...wrap, process.execPath, ...NODE_FLAGS, BIN, 'run', '--config', this.configPath, ...extraArgs];
    this.proc = execa(command[0] as string, command.slice(1), {
      env: { BATON_RUNTIME_DIR: path.join(this.dir, 'run'), BATON_STATS_DIR: this.statsDir, ...env },
      reject: false,
      buffer: false,
      stdin: 'ignore',
    });
    let partial = '';
    this.proc.stdout?.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) this.take(text);
    });
    this.proc.stderr?.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString('utf8')));
    this.exited = this.proc.then((r) => ({ exitCode: r.exitCode, signal: r.signal }));
    void this.exited.then(() => (this.gone = true));
    live.add(this);
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  /** Rewrites the config file; the next reload picks it up. */
  writeConfig(config: Record<string, unknown>): void {
    fs.writeFileSync(this.configPath, stringify(config));
  }

  /** Resolves with the first log line (already seen or to come) that `match` accepts. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no matching log line within ${timeoutMs} ms; last lines:\n${this.lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr.join('').slice(-2000)}`));
      }, timeoutMs);
      this.waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /**
   * Resolves with the first event of `type` (already seen or to come) that `match` accepts, read
   * from the supervisor's GET /events stream (re-read after an upgrade replaces the supervisor).
   */
  waitForEvent<T extends BatonEventType>(type: T, match: (e: SeenEvent<T>) => boolean = () => true, timeoutMs = 30_000): Promise<SeenEvent<T>> {
    this.subscribe();
    const accepts = (e: SeenEvent): boolean => e.type === type && match(e as SeenEvent<T>);
    const seen = this.events.find(accepts);
    if (seen) return Promise.resolve(seen as SeenEvent<T>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const last = this.events.slice(-15).map((e) => JSON.stringify(e)).join('\n');
        reject(new Error(`no ${type} event within ${timeoutMs} ms; last events:\n${last}\nstderr: ${this.stderr.join('').slice(-2000)}`));
      }, timeoutMs);
      this.eventWaiters.push({
        match: accepts,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e as SeenEvent<T>);
        },
      });
    });
  }

  /** Waits until generation `n` is active. */
  active(n: number): Promise<SeenEvent<'generation-active'>> {
    return this.waitForEvent('generation-active', (e) => e.generation === n);
  }

  /** Waits until a worker of generation `n` (any, or `worker`) reaches `to`. */
  workerState(n: number, to: SeenEvent<'worker-state'>['to'], timeoutMs?: number): Promise<SeenEvent<'worker-state'>> {
    return this.waitForEvent('worker-state', (e) => e.generation === n && e.to === to, timeoutMs);
  }

  /** Reads GET /events until the supervisor (and any successor on its socket) is gone; reconnects when a stream ends. */
  private subscribe(): void {
    if (this.subscribed) return;
    this.subscribed = true;
    const connect = (): void => {
      if (this.gone) return;
      const req = http.get({ socketPath: this.socketPath, path: '/events?after=0' }, (res) => {
        const pid = Number(res.headers['x-baton-pid']);
        let partial = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const parts = (partial + chunk).split('\n');
          partial = parts.pop() ?? '';
          for (const text of parts) if (text !== '') this.takeEvent(pid, JSON.parse(text) as PublishedEvent);
        });
        res.on('close', () => setTimeout(connect, 20));
      });
      req.on('error', () => setTimeout(connect, 20));
    };
    connect();
  }

  private takeEvent(pid: number, event: PublishedEvent): void {
    if (event.seq <= (this.lastSeq.get(pid) ?? 0)) return;
    this.lastSeq.set(pid, event.seq);
    const seen = { ...event, supervisor: pid } as SeenEvent;
    if (seen.type === 'worker-starting' && seen.pid > 0) this.childPids.add(seen.pid);
    this.events.push(seen);
    for (const w of [...this.eventWaiters]) {
      if (w.match(seen)) {
        this.eventWaiters.splice(this.eventWaiters.indexOf(w), 1);
        w.resolve(seen);
      }
    }
  }

  status(): Promise<StatusSnapshot> {
    return controlRequest(this.socketPath, 'GET', '/status').then((r) => r.body as StatusSnapshot);
  }

  /** POST /reload; resolves with the reply (ok or not). */
  async reload(): Promise<{ status: number; body: { ok: boolean; generation?: number; error?: { code: string; message: string } } }> {
    return (await controlRequest(this.socketPath, 'POST', '/reload')) as never;
  }

  /** Runs the `baton` CLI against this instance. */
  cli(...args: string[]) {
    return execa(process.execPath, [...NODE_FLAGS, BIN, ...args, '--control-socket', this.socketPath], {
      reject: false,
      env: { BATON_STATS_DIR: this.statsDir },
    });
  }

  /** The TCP port of the first listener. */
  async port(): Promise<number> {
    const s = await this.status();
    const address = s.listeners[0]?.address ?? '';
    return Number(address.slice(address.lastIndexOf(':') + 1));
  }

  /** SIGKILLs the supervisor if still running and checks that every generation died with it. */
  async cleanup(): Promise<void> {
    live.delete(this);
    this.gone = true;
    this.proc.kill('SIGKILL');
    for (const pid of this.successors) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await this.exited;
    await waitForGone([...this.childPids], 5_000);
    for (const pid of this.childPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.rmSync(this.statsDir, { recursive: true, force: true });
  }

  private take(text: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    // A spawn that failed logs pid 0: kill(0) would hit the test runner's own process group.
    if (typeof line.childPid === 'number' && line.childPid > 0) this.childPids.add(line.childPid);
    if (typeof line.instance === 'string' && typeof line.pid === 'number' && line.pid !== this.pid) this.successors.add(line.pid);
    this.lines.push(line);
    for (const w of [...this.waiters]) {
      if (w.match(line)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  }
}

/** Cleans up every supervisor a test file started (call from afterEach). */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...live].map((b) => b.cleanup()));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls until none of `pids` exists; resolves with those still alive at the deadline. */
export async function waitForGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const remaining = pids.filter((p) => alive(p) && !isZombie(p));
    if (remaining.length === 0 || Date.now() > deadline) return remaining;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** A basic config for an HTTP fixture on an ephemeral loopback port. */
export function httpConfig(command: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'test',
    command,
    listeners: [{ name: 'http', address: '127.0.0.1:0' }],
    'ready-timeout': '20s',
    'drain-timeout': '10s',
    'shutdown-timeout': '2s',
    ...extra,
  };
}
