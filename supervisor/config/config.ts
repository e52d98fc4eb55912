import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { formatAddress, isLocal, parseAddress, type Address } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { DEFAULT_DIR, type StatsCapacities } from '../../shared/stats/index.ts';
import { bytes, duration } from '../../shared/config-units.ts';
import { resolveGroup } from '../control/access.ts';
import { canarySchema, maxDrainingSchema, pacedCloseSchema, toCanaryConfig } from '../canary/config.ts';
import type { CanaryConfig } from '../canary/evaluate.ts';
import { statsWriters, usableCpus } from './workers.ts';
import { ConfigError, overlappingListener, type ConfigProblem } from './config-problems.ts';

const address = z.string().transform((value, ctx) => {
  try {
    return parseAddress(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const fileMode = z
  .union([z.number().int(), z.string().regex(/^0?[0-7]{3,4}$/, 'expected an octal mode such as "0660"')])
  .transform((v) => (typeof v === 'number' ? v : parseInt(v, 8)))
  .refine((v) => v >= 0 && v <= 0o7777, 'expected a mode between 0000 and 7777');

/** A memory limit: bytes of RSS, or `{ rss, heap }` (heap: V8 heap used). */
const limit = z.union([bytes.transform((rss) => ({ rss })), z.strictObject({ rss: bytes.optional(), heap: bytes.optional() })]);

const listener = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "." or "-"').optional(),
  address,
  backlog: z.number().int().min(1).max(65535).default(511),
  mode: fileMode.optional(),
  /** Overrides the top-level `balance` for this listener (an admin endpoint may want `shared`). */
  balance: z.enum(['shared', 'reuseport']).optional(),
});

const signalName = z
  .string()
  .regex(/^SIG[A-Z0-9]+$/, 'expected a signal name such as "SIGTERM"')
  .refine((name) => Object.hasOwn(os.constants.signals, name), {
    error: (issue) => `unknown signal '${String(issue.input)}': expected one of ${Object.keys(os.constants.signals).join(', ')}`,
  });

export const configSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "." or "-"').default('baton'),
  command: z
    .union([z.string().min(1), z.array(z.string()).min(1)], { error: 'expected a command string or a non-empty list of strings' })
    .optional(),
  cwd: z.string().optional(),
  /** Validates the child's own configuration for `baton check` (exit 0: valid); never run by `baton run`. */
  'check-command': z
    .union([z.string().min(1), z.array(z.string()).min(1)], { error: 'expected a command string or a non-empty list of strings' })
    .optional(),
  env: z.record(z.string(), z.string()).default({}),
  listeners: z.array(listener).default([]),
  'ready-timeout': duration.default(10_000),
  'drain-timeout': duration.default(30_000),
  'shutdown-timeout': duration.default(5_000),
  'accept-grace': duration.default(5_000),
  warmup: duration.default(0),
  readiness: z
    .union([
      z.enum(['auto', 'sdk', 'accepting', 'notify', 'tcp']),
      z.string().regex(/^http:\//, 'expected auto, sdk, accepting, notify, tcp or http:/PATH'),
      z.strictObject({ http: z.string().regex(/^\//, 'expected a path such as /healthz'), listener: z.string().optional() }),
    ])
    .default('auto')
    .transform((r): ReadinessConfig => {
      if (typeof r === 'object') return { mode: 'accepting', http: { path: r.http, ...(r.listener ? { listener: r.listener } : {}) } };
      if (r.startsWith('http:')) return { mode: 'accepting', http: { path: r.slice('http:'.length) } };
      return { mode: r as ReadinessConfig['mode'] };
    }),
  'drain-signal': signalName.default('SIGTERM'),
  restart: z
    .strictObject({
      'max-failures': z.number().int().min(1).default(5),
      window: duration.default(60_000),
      'backoff-initial': duration.default(100),
      'backoff-max': duration.default(10_000),
    })
    .prefault({}),
  stats: z
    .strictObject({
      dir: z.string().optional(),
      'max-bytes': bytes.default(64 * 1024 * 1024),
      'max-name-length': z.number().int().min(16).max(65536).default(1024),
      /** Capacities change the segment's hot-restart version: changing one needs a cold reload. */
      writers: z.number().int().min(2).max(1024).optional(),
      'stats-per-segment': z.number().int().min(16).optional(),
      'arena-bytes': bytes.optional(),
    })
    .prefault({}),
  memory: z
    .strictObject({
      /** Sampling interval; 0 turns memory tracking off. */
      interval: duration.default(5_000),
      /** The span summaries, slopes and growth detection look at. */
      window: duration.default(10 * 60_000),
      /** How much series each generation keeps (and for how long after it exits). */
      history: duration.default(60 * 60_000),
      'soft-limit': limit.optional(),
      'hard-limit': limit.optional(),
      /** At most one hard-limit replacement per cooldown (default: the window). */
      'replace-cooldown': duration.optional(),
      growth: z
        .strictObject({
          'min-slope': bytes.default(1024 * 1024),
          /** …and the fitted growth across the window must reach this (noise on a short window is not a leak). */
          'min-growth': bytes.default(4 * 1024 * 1024),
          /** How steady the growth must be: r² of the least-squares fit over the window. */
          'min-r2': z.number().min(0).max(1).default(0.8),
          /** Load is flat when open connections move by at most this share of their mean (or 2). */
          'load-tolerance': z.number().min(0).default(0.5),
        })
        .prefault({}),
      allocator: z.enum(['default', 'jemalloc']).default('default'),
      'profile-dir': z.string().optional(),
    })
    .prefault({}),
  /** The Prometheus listener: the supervisor's /metrics over TCP (off without `listen`). */
  metrics: z
    .strictObject({
      /** HOST:PORT to serve GET /metrics on; loopback only unless allow-remote. */
      listen: z.string().optional(),
      /** Lets `listen` be an address other hosts reach (the metrics are readable by anyone who can connect). */
      'allow-remote': z.boolean().default(false),
    })
    .prefault({}),
  'control-socket': z.string().optional(),
  /** A group (name or gid) whose members may use the control socket besides its owner. */
  'control-group': z.union([z.string().min(1), z.number().int().min(0)]).optional(),
  'runtime-listeners': z.enum(['loopback', 'any', 'none']).default('loopback'),
  'log-level': z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  /** Opaque to the supervisor: read by the child (e.g. the proxy's routes and clusters). */
  app: z.unknown().optional(),
  /** A canary window after each reload (supervisor/canary); absent: off. */
  canary: canarySchema.optional(),
  'max-draining': maxDrainingSchema,
  /** Bytes of RSS the draining generations may hold together; the oldest is hurried beyond it. */
  'draining-memory-budget': bytes.optional(),
  /** Whether a `node` command gets Baton's preload (safe drain without the SDK). */
  preload: z.enum(['auto', 'off']).default('auto'),
  /** The last share of drain-timeout over which the SDK's pacedClose() spreads long-lived connections' closes. */
  'paced-close': pacedCloseSchema,
  /** Worker processes per generation: a number, or `auto` (the CPUs this process may use). */
  workers: z
    .union([z.literal('auto'), z.number(), z.string().regex(/^\d+$/, 'expected a number of workers or auto').transform(Number)])
    .pipe(z.union([z.literal('auto'), z.number().int().min(1).max(256)]))
    .default(1),
  /** How connections reach the workers of a TCP listener: one shared socket, or one SO_REUSEPORT socket per worker. */
  balance: z.enum(['shared', 'reuseport']).default('reuseport'),
  /** How a reload replaces the workers: all at once, or slot by slot. */
  rollout: z.enum(['all-at-once', 'rolling']).default('all-at-once'),
  /** `rollout: rolling`: how many processes beyond `workers` may be alive at once. */
  'max-surge': z
    .union([z.number(), z.string().regex(/^\d+$/, 'expected a number').transform(Number)])
    .pipe(z.number().int().min(1))
    .default(1),
});

export interface MemoryLimit {
  rss?: number;
  heap?: number;
}

export interface MemoryConfig {
  interval: number;
  window: number;
  history: number;
  softLimit?: MemoryLimit;
  hardLimit?: MemoryLimit;
  replaceCooldown: number;
  growth: { minSlope: number; minGrowth: number; minR2: number; loadTolerance: number };
  allocator: 'default' | 'jemalloc';
  profileDir?: string;
}

/**
 * How a generation is judged ready; `http` adds a GET through a held listener that must answer 2xx.
 * `notify`: READY=1 on its NOTIFY_SOCKET; `tcp`: it accepts a connection made through a TCP listener.
 */
export interface ReadinessConfig {
  mode: 'auto' | 'sdk' | 'accepting' | 'notify' | 'tcp';
  http?: { path: string; listener?: string };
}

export type RawConfig = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;

export interface ListenerConfig {
  name: string;
  address: Address;
  /** Canonical address as configured (port 0 stays 0): the socket store's key. */
  key: string;
  backlog: number;
  mode?: number;
  /** One SO_REUSEPORT socket per worker slot (a TCP listener with `balance: reuseport` and several workers). */
  reusePort?: boolean;
}

/** A validated configuration, resolved against the file it came from. */
export interface Config {
  name: string;
  command: string[];
  /** What `baton check` runs to validate the child's own section (`check-command`). */
  checkCommand?: string[];
  cwd: string;
  env: Record<string, string>;
  listeners: ListenerConfig[];
  readyTimeout: number;
  drainTimeout: number;
  shutdownTimeout: number;
  /** How long the active generation may stop accepting on a listener it accepted on before it is replaced; 0 or absent: never. */
  acceptGrace?: number;
  /** How long a reload's new generation accepts beside the one it replaces before that one drains; 0 or absent: none. */
  warmup?: number;
  readiness: ReadinessConfig;
  drainSignal: NodeJS.Signals;
  restart: { maxFailures: number; window: number; backoffInitial: number; backoffMax: number };
  stats: { dir: string; maxBytes: number; maxNameLength: number; capacities: StatsCapacities };
  /** Memory tracking; absent (hand-built configs in unit tests): off. */
  memory?: MemoryConfig;
  /** The TCP metrics listener; absent: off. */
  metrics?: { listen: Address & { kind: 'tcp' } };
  controlSocket?: string;
  /** The gid admitted to the control socket besides its owner and root. */
  controlGroup?: number;
  runtimeListeners: Parsed['runtime-listeners'];
  logLevel: Parsed['log-level'];
  /** The config file, when there is one: re-read on every reload. */
  file?: string;
  /** The canary window after a reload; absent: off. */
  canary?: CanaryConfig;
  /** At most this many generations drain at once. @default 3 */
  maxDraining?: number;
  /** RSS the draining generations may hold together before the oldest is hurried; absent: no bound. */
  drainingMemoryBudget?: number;
  /** `auto`: a `node` command gets Baton's preload. @default 'auto' */
  preload?: 'auto' | 'off';
  /** Share of drain-timeout for paced closes. @default 0.5 */
  pacedClose?: number;
  /** Worker processes per generation (`auto` resolved). @default 1 */
  workers?: number;
  /** How a reload replaces workers; `maxSurge`: extra processes a rolling one may have alive. @default all-at-once */
  rollout?: { mode: 'all-at-once' | 'rolling'; maxSurge: number };
}

/** Where stats segments go without `stats.dir`: $BATON_STATS_DIR (tests, unusual hosts), else /dev/shm. */
export function defaultStatsDir(): string {
  return process.env.BATON_STATS_DIR ?? DEFAULT_DIR;
}

/** Validates `raw` (already merged from file and flags); `where` names the source in errors. Throws a ConfigError listing every problem. */
export function validateConfig(raw: unknown, where: string, baseDir: string, file?: string): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.flatMap((issue): ConfigProblem[] =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ path: [...issue.path, key], message: 'unknown key', key: true }))
        : [{ path: issue.path, message: issue.message }],
    );
    throw new ConfigError(where, problems);
  }
  const c = result.data;
  const problems: ConfigProblem[] = [];
  if (c.command === undefined) problems.push({ path: ['command'], message: 'required (or give it after --)' });
  const workers = c.workers === 'auto' ? usableCpus() : c.workers;
  const names = new Set<string>();
  const keys = new Set<string>();
  const listeners: ListenerConfig[] = [];
  c.listeners.forEach((l, i) => {
    const key = formatAddress(l.address);
    const name = l.name ?? defaultName(l.address, names);
    for (const [set, value, what] of [[names, name, 'name'], [keys, key, 'address']] as const) {
      if (set.has(value)) problems.push({ path: ['listeners', i, what], message: `'${value}' is used twice` });
      set.add(value);
    }
    const overlap = overlappingListener(l.address, listeners);
    if (overlap) problems.push({ path: ['listeners', i, 'address'], message: `'${key}' overlaps ${overlap}` });
    if (l.mode !== undefined && l.address.kind !== 'unix') problems.push({ path: ['listeners', i, 'mode'], message: 'only Unix socket listeners have a mode' });
    const reusePort = workers > 1 && l.address.kind === 'tcp' && (l.balance ?? c.balance) === 'reuseport';
    listeners.push({ name, address: l.address, key, backlog: l.backlog, ...(l.mode !== undefined ? { mode: l.mode } : {}), ...(reusePort ? { reusePort } : {}) });
  });
  if (c.readiness.http) {
    const wanted = c.readiness.http.listener;
    if (wanted !== undefined ? !names.has(wanted) : listeners.length === 0) {
      problems.push({ path: ['readiness'], message: wanted !== undefined ? `no listener named '${wanted}'` : 'needs a listener to send the probe through', label: 'readiness.http' });
    }
  }
  let controlGroup: number | undefined;
  try {
    if (c['control-group'] !== undefined) controlGroup = resolveGroup(c['control-group']);
  } catch (err) {
    problems.push({ path: ['control-group'], message: (err as Error).message });
  }
  if (c.readiness.mode === 'tcp' && !listeners.some((l) => l.address.kind === 'tcp')) {
    problems.push({ path: ['readiness'], message: 'tcp needs a TCP listener to connect through' });
  }
  const metrics = metricsListen(c.metrics.listen, c.metrics['allow-remote'], problems);
  const cwd = path.resolve(baseDir, c.cwd ?? '.');
  if (problems.length > 0 || c.command === undefined) throw new ConfigError(where, problems);
  const split = (v: string | string[]): string[] => (typeof v === 'string' ? v.split(/\s+/).filter(Boolean) : v);
  const command = split(c.command);
  return {
    name: c.name,
    command,
    ...(c['check-command'] !== undefined ? { checkCommand: split(c['check-command']) } : {}),
    cwd,
    env: c.env,
    listeners,
    readyTimeout: c['ready-timeout'],
    drainTimeout: c['drain-timeout'],
    shutdownTimeout: c['shutdown-timeout'],
    acceptGrace: c['accept-grace'],
    ...(c.warmup > 0 ? { warmup: c.warmup } : {}),
    readiness: c.readiness,
    drainSignal: c['drain-signal'] as NodeJS.Signals,
    restart: {
      maxFailures: c.restart['max-failures'],
      window: c.restart.window,
      backoffInitial: c.restart['backoff-initial'],
      backoffMax: c.restart['backoff-max'],
    },
    stats: {
      dir: path.resolve(baseDir, c.stats.dir ?? defaultStatsDir()),
      maxBytes: c.stats['max-bytes'],
      maxNameLength: c.stats['max-name-length'],
      capacities: {
        ...statsWriters(c.stats.writers, workers, where),
        ...(c.stats['stats-per-segment'] !== undefined ? { statsPerSegment: c.stats['stats-per-segment'] } : {}),
        ...(c.stats['arena-bytes'] !== undefined ? { arenaBytes: c.stats['arena-bytes'] } : {}),
      },
    },
    memory: {
      interval: c.memory.interval,
      window: c.memory.window,
      history: c.memory.history,
      ...(c.memory['soft-limit'] ? { softLimit: c.memory['soft-limit'] } : {}),
      ...(c.memory['hard-limit'] ? { hardLimit: c.memory['hard-limit'] } : {}),
      replaceCooldown: c.memory['replace-cooldown'] ?? c.memory.window,
      growth: {
        minSlope: c.memory.growth['min-slope'],
        minGrowth: c.memory.growth['min-growth'],
        minR2: c.memory.growth['min-r2'],
        loadTolerance: c.memory.growth['load-tolerance'],
      },
      allocator: c.memory.allocator,
      ...(c.memory['profile-dir'] !== undefined ? { profileDir: path.resolve(baseDir, c.memory['profile-dir']) } : {}),
    },
    ...(metrics ? { metrics: { listen: metrics } } : {}),
    ...(c['control-socket'] !== undefined ? { controlSocket: path.resolve(baseDir, c['control-socket']) } : {}),
    ...(controlGroup !== undefined ? { controlGroup } : {}),
    runtimeListeners: c['runtime-listeners'],
    logLevel: c['log-level'],
    ...(file !== undefined ? { file } : {}),
    ...(c.canary ? { canary: toCanaryConfig(c.canary) } : {}),
    maxDraining: c['max-draining'],
    ...(c['draining-memory-budget'] !== undefined ? { drainingMemoryBudget: c['draining-memory-budget'] } : {}),
    preload: c.preload,
    pacedClose: c['paced-close'],
    ...(workers > 1 ? { workers, rollout: { mode: c.rollout, maxSurge: c['max-surge'] } } : {}),
  };
}

/** The metrics listener's address: TCP, and loopback unless other hosts are explicitly allowed. */
function metricsListen(text: string | undefined, allowRemote: boolean, problems: ConfigProblem[]): (Address & { kind: 'tcp' }) | undefined {
  if (text === undefined) return undefined;
  const bad = (why: string): undefined => {
    problems.push({ path: ['metrics', 'listen'], message: why });
    return undefined;
  };
  let address: Address;
  try {
    address = parseAddress(text);
  } catch (err) {
    return bad((err as Error).message);
  }
  if (address.kind !== 'tcp') return bad(`'${text}' is a Unix socket: the metrics listener is for TCP scrapers (the control socket already serves /metrics)`);
  if (!isLocal(address) && !allowRemote) {
    return bad(`'${text}' is not a loopback address: set metrics.allow-remote: true to let other hosts read the metrics`);
  }
  return address;
}

/** Reads and parses a YAML (or JSON) config file; YAML errors carry line and column. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new BatonError('ERR_CONFIG', `cannot read config ${file}: ${(err as Error).message}`, { cause: err });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0] as { message: string };
    throw new BatonError('ERR_CONFIG', `invalid YAML in ${file}: ${first.message}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new BatonError('ERR_CONFIG', `invalid configuration in ${file}: expected a mapping at the top level`);
  }
  return value as Record<string, unknown>;
}

export interface LoadOptions {
  /**
   * The working directory must exist now: for what starts generations (run, reload, check), not
   * for a client that only reads the name, nor a config meant for another host. @default false
   */
  requireCwd?: boolean;
}

/**
 * Loads the effective configuration: the file (if any) under the command-line overrides.
 * Called again on every reload so a new release or config on disk is picked up.
 */
export function loadConfig(file: string | undefined, overrides: Record<string, unknown>, options: LoadOptions = {}): Config {
  const fromFile = file ? readConfigFile(file) : {};
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (key === 'listeners' && Array.isArray(value) && value.length === 0) continue;
    merged[key] = value;
  }
  const where = file ? `${file}${Object.keys(overrides).length > 0 ? ' and the command line' : ''}` : 'the command line';
  const resolved = file ? path.resolve(file) : undefined;
  const baseDir = resolved ? path.dirname(resolved) : process.cwd();
  // Checked here, where the file system is real: a missing cwd would otherwise surface as the
  // spawn of baton-exec failing with ENOENT, naming the wrong file.
  const cwd = path.resolve(baseDir, typeof merged.cwd === 'string' ? merged.cwd : '.');
  const stat = fs.statSync(cwd, { throwIfNoEntry: false });
  const missing: ConfigProblem[] = !options.requireCwd || stat?.isDirectory() ? [] : [{ path: ['cwd'], message: `the working directory ${cwd} ${stat ? 'is not a directory' : 'does not exist'}` }];
  try {
    const config = validateConfig(merged, where, baseDir, resolved);
    if (missing.length > 0) throw new ConfigError(where, missing);
    return config;
  } catch (err) {
    if (err instanceof ConfigError && missing.length > 0 && !err.problems.some((p) => p.path[0] === 'cwd')) throw new ConfigError(where, [...err.problems, ...missing]);
    throw err;
  }
}

/** `tcp8080` or the socket file's name (made safe for LISTEN_FDNAMES), suffixed when taken. */
function defaultName(address: Address, taken: Set<string>): string {
  const base = (address.kind === 'unix' ? path.basename(address.path) : `tcp${address.port}`).replace(/[^A-Za-z0-9_.-]/g, '_');
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  return name;
}
