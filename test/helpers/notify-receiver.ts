import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './baton.ts';

const receivers: { proc: ChildProcess; dir: string }[] = [];

/** Kills every receiver a test started and removes its directory (call from afterEach). */
export function stopReceivers(): void {
  for (const r of receivers.splice(0)) {
    r.proc.kill('SIGKILL');
    fs.rmSync(r.dir, { recursive: true, force: true });
  }
}

export interface Notification {
  message: string;
  ports: unknown[];
  /** Position in arrival order. */
  index: number;
}

/** A stand-in for systemd's NOTIFY_SOCKET (a Python receiver, so descriptors can be inspected). */
export class NotifyReceiver {
  readonly socketPath: string;
  readonly seen: Notification[] = [];
  private readonly waiters: { match: (n: Notification) => boolean; resolve: (n: Notification) => void }[] = [];
  private readonly ready: Promise<void>;

  constructor() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-notify-'));
    this.socketPath = path.join(dir, 'notify.sock');
    const proc = spawn('python3', [path.join(ROOT, 'test/fixtures/notify_receiver.py'), this.socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    receivers.push({ proc, dir });
    let markReady: () => void = () => {};
    this.ready = new Promise((resolve) => {
      markReady = resolve;
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as { ready?: true; message?: string; ports?: unknown[] };
      if (parsed.ready) return markReady();
      const n = { message: parsed.message ?? '', ports: parsed.ports ?? [], index: this.seen.length };
      this.seen.push(n);
      for (const w of [...this.waiters]) {
        if (w.match(n)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(n);
        }
      }
    });
  }

  listening(): Promise<void> {
    return this.ready;
  }

  /** The first notification after index `after` whose message has every `KEY=VALUE` line in `fields` (a RegExp value matches). */
  next(fields: Record<string, string | RegExp>, after = -1, timeoutMs = 20_000): Promise<Notification> {
    const match = (n: Notification): boolean => {
      if (n.index <= after) return false;
      const lines = new Map(n.message.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      return Object.entries(fields).every(([k, v]) => (typeof v === 'string' ? lines.get(k) === v : v.test(lines.get(k) ?? '')));
    };
    const seen = this.seen.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no notification ${JSON.stringify(fields)} within ${timeoutMs} ms; seen:\n${this.seen.map((n) => JSON.stringify(n.message)).join('\n')}`)), timeoutMs);
      this.waiters.push({ match, resolve: (n) => (clearTimeout(timer), resolve(n)) });
    });
  }
}

/** The value of `KEY=` in a notification. */
export function field(n: Notification, key: string): string | undefined {
  return n.message.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
}
