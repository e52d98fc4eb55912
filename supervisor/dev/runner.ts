/**
 * `baton dev`: runs an app under a Supervisor composed in memory, watches the project, and turns
 * every burst of saves into one hot restart. A save that arrives while a reload is starting is
 * kept as the one pending reload and started when the current one settles; a broken save leaves
 * the last good generation serving and prints where it broke.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BatonError } from '../../shared/errors.ts';
import { ENV } from '../../shared/launch-env.ts';
import type { Config } from '../config/config.ts';
import { DEV_USAGE, parseDevArgs } from './command.ts';
import { debounceOption, devConfig } from './dev-config.ts';
import { devLogger, firstLine } from './dev-log.ts';
import { describeFiles, DevOutput, mib, mibDelta } from './output.ts';
import { listenForKeys, type Keys } from './keys.ts';
import type { ChildPort, Os } from '../os/os.ts';
import { realOs } from '../os/real-os.ts';
import { Supervisor } from '../core/supervisor.ts';
import { DEFAULT_EXTENSIONS, ProjectWatcher, type ChangeBatch } from './watch.ts';

/** Lines of each generation's output kept to find where a failed start broke. */
const KEPT_LINES = 200;
/** Exited generations whose record is kept. */
const KEPT_GENERATIONS = 8;

interface GenRecord {
  pid: number;
  lines: string[];
  rss?: number;
  exited: boolean;
}

/** What one reload is for: the files of a batch, or a key. */
interface Trigger {
  reason: string;
  /** When the first save of the batch was seen (performance.now()). */
  since: number;
  files: string[];
}

export async function dev(args: string[]): Promise<number> {
  const parsed = parseDevArgs(args);
  if (parsed.values.help) {
    process.stdout.write(`Usage:\n${DEV_USAGE}`);
    return 0;
  }
  const title = parsed.entry !== undefined ? path.relative(process.cwd(), parsed.entry) : parsed.command.join(' ');
  const runner = new DevRunner(parsed.command, parsed.values, title);
  return runner.run();
}

class DevRunner {
  private readonly root = process.cwd();
  private readonly out = new DevOutput(process.stdout);
  private readonly values: ReturnType<typeof parseDevArgs>['values'];
  private readonly config: Config;
  private readonly supervisor: Supervisor;
  private readonly gens = new Map<number, GenRecord>();
  private lastSpawned = 0;
  private active: number | undefined;
  private reloads = 0;
  private pending: Trigger | undefined;
  private running = false;
  private waitTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private watcher: ProjectWatcher | undefined;
  private keys: Keys | undefined;
  private readonly title: string;
  private readonly debounceMs: number;

  constructor(command: string[], values: ReturnType<typeof parseDevArgs>['values'], title: string) {
    this.values = values;
    this.title = title;
    this.debounceMs = debounceOption(values.debounce);
    this.config = devConfig(command, values, this.root);
    const os: Os = { ...realOs, spawn: (spec) => this.spawned(realOs.spawn({ ...spec, onLine: this.lineSink(Number(spec.env[ENV.generation])) }), spec.env) };
    this.supervisor = new Supervisor(this.config, { os, log: devLogger(this.out, this.values.verbose === true), loadConfig: () => this.config });
  }

  run(): Promise<number> {
    return new Promise<number>((resolve) => {
      let interrupts = 0;
      const interrupt = (why: string): void => {
        interrupts += 1;
        if (interrupts === 1) this.stop(why);
        else {
          this.out.say('killing every generation');
          this.supervisor.forceStop();
        }
      };
      let stopped = false;
      this.supervisor.once('stopped', () => {
        stopped = true;
        this.out.say('stopped');
        void this.watcher?.close();
        this.keys?.release();
        resolve(0);
      });
      this.supervisor.events.on('event', (e) => {
        if (e.type === 'crash-loop') this.crashed(e.generation, e.message);
      });
      // A reload's outcome is told where it is asked for; a start or a crash restart is told here.
      this.supervisor.on('active', ({ generation, readyMs, why }) => {
        if (why !== 'reload') this.started(generation, readyMs);
      });
      process.on('SIGINT', () => interrupt('Ctrl-C'));
      process.on('SIGTERM', () => interrupt('SIGTERM'));
      process.on('SIGHUP', () => this.request({ reason: 'SIGHUP', since: performance.now(), files: [] }));
      this.out.say(`${this.out.paint.bold('baton dev')} ${this.title}`);
      try {
        this.supervisor.start();
      } catch (err) {
        this.out.fail((err as Error).message);
        resolve(isUsage(err) ? 2 : 1);
        return;
      }
      // After one full turn of the event loop: generation 1, booted and woken while this
      // process's modules loaded (early-start.ts), has its hello and listen waiting on the IPC
      // channel, and the watcher's and the keys' set-up (10-17 ms) would come before their answers.
      setImmediate(() =>
        setImmediate(() => {
          if (stopped) return;
          this.watch();
          this.keys = listenForKeys((key) => {
            if (key === 'r') this.request({ reason: 'r pressed', since: performance.now(), files: [] });
            else if (key === 'q') this.stop('q pressed');
            else if (key === 'ctrl-c') interrupt('Ctrl-C');
          });
        }),
      );
    });
  }

  private watch(): void {
    const debounceMs = this.debounceMs;
    const extensions = this.values.ext !== undefined ? this.values.ext.split(',').map((e) => e.trim()).filter(Boolean) : DEFAULT_EXTENSIONS;
    this.watcher = new ProjectWatcher(
      { root: this.root, watch: this.values.watch ?? [], ignore: this.values.ignore ?? [], extensions, debounceMs },
      (batch) => this.changed(batch),
      (err) => this.out.say(this.out.paint.yellow(`watcher: ${err.message}`)),
    );
    const watcher = this.watcher;
    void watcher.ready().then(() => {
      const roots = watcher.roots.map((r) => path.relative(this.root, r) || '.').join(', ');
      this.out.say(`watching ${roots} (${watcher.count()} paths, debounce ${debounceMs} ms) · keys: r reload, q quit`);
    });
  }

  private changed(batch: ChangeBatch): void {
    const files = batch.changes.map((c) => c.path);
    const what = describeFiles(files, this.root);
    const saves = batch.events > 1 ? ` (${batch.events} events)` : '';
    this.request({ reason: `${what} changed${saves}`, since: batch.firstAt, files });
  }

  /** Asks for a reload: started now, or kept as the one pending reload (merged with any other). */
  private request(trigger: Trigger): void {
    if (this.stopping) return;
    if (this.pending) {
      const files = [...new Set([...this.pending.files, ...trigger.files])];
      this.pending = { reason: `${this.pending.reason}; ${trigger.reason}`, since: this.pending.since, files };
    } else this.pending = trigger;
    this.pump();
  }

  private pump(): void {
    if (this.running || this.stopping || !this.pending || this.waitTimer) return;
    // A first start or a crash restart still starting would be promoted over a newer reload: wait for it.
    if (this.supervisor.status().generations.some((g) => g.state === 'starting' || g.state === 'ready')) {
      this.waitTimer = setTimeout(() => {
        this.waitTimer = undefined;
        this.pump();
      }, 25);
      return;
    }
    const trigger = this.pending;
    this.pending = undefined;
    this.running = true;
    void this.reload(trigger).finally(() => {
      this.running = false;
      this.pump();
    });
  }

  private async reload(trigger: Trigger): Promise<void> {
    const n = ++this.reloads;
    const previous = this.active;
    this.out.say(this.out.paint.dim(`↻ reload ${n} · ${trigger.reason}`));
    const attempt = this.supervisor.reload();
    const spawned = this.lastSpawned;
    try {
      const result = await attempt;
      const record = this.gens.get(result.generation);
      const rss = readRss(result.pid);
      if (record && rss !== undefined) record.rss = rss;
      this.active = result.generation;
      const before = previous !== undefined ? this.gens.get(previous)?.rss : undefined;
      const memory = before !== undefined ? ` (gen ${previous} ${mib(before)}, ${mibDelta(rss, before)})` : '';
      this.out.ok(
        `reload ${n} → gen ${result.generation} ready in ${result.readyMs} ms · ${trigger.reason} · ` +
          `${trigger.files.length > 0 ? 'save' : 'asked'} → serving ${Math.round(performance.now() - trigger.since)} ms · rss ${mib(rss)}${memory}`,
      );
    } catch (err) {
      if (this.stopping) return;
      const cause = (err as Error).cause as Error | undefined;
      const why = firstLine(cause?.message ?? (err as Error).message);
      const serving = this.active !== undefined ? `gen ${this.active} keeps serving` : 'nothing is serving';
      this.out.fail(`reload ${n} failed · ${trigger.reason} · ${why} · ${serving}`);
      this.out.cause(this.gens.get(spawned)?.lines ?? [], this.root);
      this.out.detail(this.out.paint.dim('fix it and save (or press r) to try again'));
    }
  }

  /** Generation `id` crashed (or could not start) and the supervisor gave up: wait for a save. */
  private crashed(id: number, message: string): void {
    if (this.running || this.stopping) return;
    // The crash loop's message ends with the count of failures; the first part is the crash.
    const cause = message.replace(/; \d+ failures within .*: giving up$/, '');
    this.active = undefined;
    this.out.fail(firstLine(cause).replace(/^active /, ''));
    this.out.cause(this.gens.get(id)?.lines ?? [], this.root);
    this.out.detail(this.out.paint.dim('waiting for a save (or press r)'));
  }

  private stop(why: string): void {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.waitTimer);
    this.out.say(`${why}: stopping (again to kill)`);
    void this.supervisor.stop(why);
  }

  private spawned(port: ChildPort, env: Record<string, string>): ChildPort {
    const id = Number(env[ENV.generation]);
    this.lastSpawned = id;
    const record = this.gens.get(id) ?? { pid: port.pid, lines: [], exited: false };
    record.pid = port.pid;
    this.gens.set(id, record);
    port.onExit(() => {
      record.exited = true;
      const exited = [...this.gens].filter(([, r]) => r.exited);
      for (const [old] of exited.slice(0, Math.max(0, exited.length - KEPT_GENERATIONS))) this.gens.delete(old);
    });
    return port;
  }

  private lineSink(id: number): (stream: 'stdout' | 'stderr', line: string) => void {
    return (stream, line) => {
      let record = this.gens.get(id);
      if (!record) {
        record = { pid: 0, lines: [], exited: false };
        this.gens.set(id, record);
      }
      if (stream === 'stderr') {
        record.lines.push(line);
        if (record.lines.length > KEPT_LINES) record.lines.shift();
      }
      this.out.app(id, stream, line);
    };
  }

  private started(id: number, readyMs: number): void {
    this.active = id;
    const record = this.gens.get(id);
    const rss = record ? readRss(record.pid) : undefined;
    if (record && rss !== undefined) record.rss = rss;
    this.out.ok(`gen ${id} ready in ${readyMs} ms · rss ${mib(rss)}`);
  }
}

/** VmRSS of `pid` in bytes, from /proc/<pid>/status. */
export function readRss(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

function isUsage(err: unknown): boolean {
  return err instanceof BatonError && (err.code === 'ERR_USAGE' || err.code === 'ERR_CONFIG');
}
