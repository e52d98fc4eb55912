// Shared by the stats tests: a temp dir under /dev/shm per test, worker processes
// (test/fixtures/stats-worker.ts) that are always killed, and a logger that records.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import type { StatsLogger } from '../../../shared/stats/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const WORKER = path.join(ROOT, 'test/fixtures/stats-worker.ts');

const dirs = new Set<string>();
const workers = new Set<Worker>();

afterEach(async () => {
  for (const w of workers) w.child.kill('SIGKILL');
  await Promise.all([...workers].map((w) => w.exited));
  workers.clear();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  dirs.clear();
});

/** A fresh directory under /dev/shm (tmpfs, like the real thing), removed after the test. */
export function tempDir(): string {
  const dir = fs.mkdtempSync('/dev/shm/baton-stats-test-');
  dirs.add(dir);
  return dir;
}

/** Lines a worker printed: `{ event, ... }`. */
export interface WorkerEvent {
  event: string;
  [key: string]: unknown;
}

/** A stats-worker process. */
export class Worker {
  readonly child: ChildProcess;
  readonly events: WorkerEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  readonly #waiters: { event: string; resolve: (e: WorkerEvent) => void }[] = [];

  constructor(args: Record<string, unknown>) {
    this.child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', WORKER, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code, signal }) as { code: number | null; signal: NodeJS.Signals | null });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as WorkerEvent;
      this.events.push(event);
      for (const w of this.#waiters.filter((w) => w.event === event.event)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(event);
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The first `event` line, waiting for it; fails with the worker's stderr if it exits first. */
  waitFor(event: string, timeoutMs = 20_000): Promise<WorkerEvent> {
    const seen = this.events.find((e) => e.event === event);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${this.pid}: no "${event}" within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      this.#waiters.push({ event, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`worker ${this.pid} exited (${code ?? signal}) before "${event}"; stderr: ${this.stderr}`));
      });
    });
  }

  /** SIGKILL, then wait until it is reaped. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts a worker; it is SIGKILLed after the test if still running. */
export function startWorker(args: Record<string, unknown>): Worker {
  const worker = new Worker(args);
  workers.add(worker);
  return worker;
}

/** A logger that keeps what it gets. */
export function recordingLogger(): StatsLogger & { infos: string[]; warns: string[] } {
  const infos: string[] = [];
  const warns: string[] = [];
  return { infos, warns, info: (m) => void infos.push(m), warn: (m) => void warns.push(m) };
}

/** A unique instance name per call, so a mistake cannot touch another test's files. */
let sequence = 0;
export function instanceName(): string {
  return `t${process.pid}-${++sequence}`;
}
