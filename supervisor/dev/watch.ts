/**
 * Watches a project for `baton dev`: chokidar over the project directory (or the bases of the
 * `--watch` globs), with node_modules, .git and build output ignored, and bursts of saves merged
 * into one batch by a quiet window (debounce), bounded by a longest wait.
 */
import type { FSWatcher } from 'chokidar';
import { createRequire } from 'node:module';
import path from 'node:path';

/** Directories never watched, wherever they are in the tree. */
export const IGNORED_DIRS = ['node_modules', '.git', 'dist', 'build', 'coverage'];
/** Editor droppings: swap files, backups, lock files. */
const IGNORED_FILES = ['*.swp', '*.swx', '*~', '.#*', '4913', '.DS_Store'];
/** Files that count when no `--watch` glob says what to watch. */
export const DEFAULT_EXTENSIONS = ['ts', 'tsx', 'mts', 'cts', 'js', 'jsx', 'mjs', 'cjs', 'json'];

export interface WatchOptions {
  /** The project directory: relative globs are resolved against it. */
  root: string;
  /** Globs of what to watch; empty: every file under `root` with one of `extensions`. */
  watch: string[];
  /** Globs of what not to watch, on top of IGNORED_DIRS. A glob without `/` matches a name anywhere. */
  ignore: string[];
  extensions: string[];
  /** Quiet time that ends a burst. */
  debounceMs: number;
  /** Longest a batch waits under a steady stream of changes. @default 10 × debounceMs, at least 1 s */
  maxWaitMs?: number;
}

export interface Change {
  event: 'add' | 'change' | 'unlink';
  /** Absolute path. */
  path: string;
}

/** What the watcher merged into one batch: every distinct path and how many events there were. */
export interface ChangeBatch {
  changes: Change[];
  events: number;
  /** When the first event of the batch arrived (performance.now()). */
  firstAt: number;
}

/** A matcher for the options: `ignored(path)` prunes directories too; `wanted(path)` is for files. */
export function compileFilters(options: Pick<WatchOptions, 'root' | 'watch' | 'ignore' | 'extensions'>): {
  roots: string[];
  ignored: (file: string) => boolean;
  wanted: (file: string) => boolean;
} {
  const absolute = (glob: string): string => (path.isAbsolute(glob) ? glob : path.join(options.root, glob));
  const all = [...IGNORED_DIRS, ...IGNORED_FILES, ...options.ignore];
  // A name (no `/`) is matched against every segment of a path, dotfiles included.
  const names = all.filter((g) => !g.includes('/')).map(nameRegExp);
  const ignoreGlobs = all.filter((g) => g.includes('/')).flatMap((g) => [absolute(g), absolute(`${g.replace(/\/+$/, '')}/**`)]);
  const watchGlobs = options.watch.map(absolute);
  const extensions = new Set(options.extensions.map((e) => e.replace(/^\./, '').toLowerCase()));
  const roots = watchGlobs.length === 0 ? [options.root] : dedupe(watchGlobs.map(globBase));
  return {
    roots,
    ignored: (file) =>
      // Segments below the project only: a project that itself lives in a `build/` is still watched.
      segmentsBelow(options.root, file).some((seg) => names.some((re) => re.test(seg))) ||
      ignoreGlobs.some((g) => path.matchesGlob(file, g)),
    wanted: (file) =>
      watchGlobs.length > 0
        ? watchGlobs.some((g) => g === file || path.matchesGlob(file, g))
        : extensions.has(path.extname(file).slice(1).toLowerCase()),
  };
}

function segmentsBelow(root: string, file: string): string[] {
  return path.relative(root, file).split(path.sep).filter((seg) => seg !== '..' && seg !== '');
}

/** `*.swp` → /^[^/]*\.swp$/: `*` and `?` within one name, `[…]` as written, a leading dot not special. */
function nameRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[' || ch === ']') re += ch;
    else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The directory part of a glob before its first wildcard: what has to be watched to see its matches. */
export function globBase(glob: string): string {
  const parts = glob.split('/');
  const firstWild = parts.findIndex((p) => /[*?[\]{}!]/.test(p));
  if (firstWild === -1) return glob;
  return parts.slice(0, firstWild).join('/') || '/';
}

function dedupe(dirs: string[]): string[] {
  const sorted = [...new Set(dirs)].sort();
  return sorted.filter((d) => !sorted.some((o) => o !== d && d.startsWith(`${o.replace(/\/$/, '')}/`)));
}

/** Merges events into batches: a batch is handed over once no event came for `debounceMs`. */
export class Debouncer {
  private readonly debounceMs: number;
  private readonly maxWaitMs: number;
  private readonly flush: (batch: ChangeBatch) => void;
  private batch: ChangeBatch | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(debounceMs: number, maxWaitMs: number, flush: (batch: ChangeBatch) => void) {
    this.debounceMs = debounceMs;
    this.maxWaitMs = maxWaitMs;
    this.flush = flush;
  }

  add(change: Change): void {
    const now = performance.now();
    this.batch ??= { changes: [], events: 0, firstAt: now };
    this.batch.events += 1;
    const seen = this.batch.changes.findIndex((c) => c.path === change.path);
    if (seen === -1) this.batch.changes.push(change);
    else this.batch.changes[seen] = change;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.batch.firstAt + this.maxWaitMs - now));
    this.timer = setTimeout(() => this.fire(), wait);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.batch = undefined;
  }

  private fire(): void {
    const batch = this.batch;
    const events = batch?.events;
    // A process that stalled runs its expired timers before it reads the I/O that waited meanwhile:
    // the rest of a burst lands first (poll phase, before setImmediate's), so a stall does not
    // split one burst into two reloads. An event that came re-armed the timer: not yet.
    setImmediate(() => {
      if (!batch || this.batch !== batch || batch.events !== events) return;
      this.batch = undefined;
      this.flush(batch);
    });
  }
}

/** The project watcher: call `ready()` before relying on events, `close()` at the end. */
export class ProjectWatcher {
  readonly roots: string[];
  private readonly watcher: FSWatcher;
  private readonly debouncer: Debouncer;
  private readonly isReady: Promise<void>;

  constructor(options: WatchOptions, onBatch: (batch: ChangeBatch) => void, onError: (err: Error) => void) {
    const filters = compileFilters(options);
    this.roots = filters.roots;
    this.debouncer = new Debouncer(options.debounceMs, options.maxWaitMs ?? Math.max(1000, 10 * options.debounceMs), onBatch);
    // Required here, not imported: the supervisor reaches this module for DEFAULT_EXTENSIONS (through
    // the preload's command line) and must not load chokidar (~4 MiB) unless `baton dev` watches.
    const { watch } = createRequire(import.meta.url)('chokidar') as typeof import('chokidar');
    this.watcher = watch(filters.roots, {
      ignoreInitial: true,
      ignored: (file) => filters.ignored(path.resolve(file)),
      // A save by rename (vim, many IDEs) is reported as one change.
      atomic: true,
    });
    for (const event of ['add', 'change', 'unlink'] as const) {
      this.watcher.on(event, (file: string) => {
        const abs = path.resolve(file);
        if (filters.wanted(abs)) this.debouncer.add({ event, path: abs });
      });
    }
    this.watcher.on('error', (err) => onError(err as Error));
    this.isReady = new Promise((resolve) => this.watcher.once('ready', () => resolve()));
  }

  /** Resolves once the initial scan is done: changes from then on are reported. */
  ready(): Promise<void> {
    return this.isReady;
  }

  /** Paths (files and directories) being watched. */
  count(): number {
    return Object.values(this.watcher.getWatched()).reduce((n, items) => n + items.length, 0);
  }

  async close(): Promise<void> {
    this.debouncer.cancel();
    await this.watcher.close();
  }
}
