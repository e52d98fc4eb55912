import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { formatAddress, parseAddress, type Address } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { DEFAULT_DIR, type StatsCapacities } from '../../shared/stats/index.ts';
import { bytes, duration } from '../../shared/config-units.ts';
import { resolveGroup } from '../control/access.ts';
import { canarySchema, maxDrainingSchema, pacedCloseSchema, toCanaryConfig } from '../canary/config.ts';
import type { CanaryConfig } from '../canary/evaluate.ts';

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
});

const signalName = z.string().regex(/^SIG[A-Z0-9]+$/, 'expected a signal name such as "SIGTERM"');

export const configSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "." or "-"').default('baton'),
  command: z
    .union([z.string().min(1), z.array(z.string()).min(1)], { error: 'expected a command string or a non-empty list of strings' })
    .optional(),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).default({}),
  listeners: z.array(listener).default([]),
  'ready-timeout': duration.default(10_000),
  'drain-timeout': duration.default(30_000),
  'shutdown-timeout': duration.default(5_000),
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
  /** Whether a `node` command gets Baton's preload (safe drain without the SDK). */
  preload: z.enum(['auto', 'off']).default('auto'),
  /** The last share of drain-timeout over which the SDK's pacedClose() spreads long-lived connections' closes. */
  'paced-close': pacedCloseSchema,
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
}

/** A validated configuration, resolved against the file it came from. */
export interface Config {
  name: string;
  command: string[];
  cwd: string;
  env: Record<string, string>;
  listeners: ListenerConfig[];
  readyTimeout: number;
  drainTimeout: number;
  shutdownTimeout: number;
  readiness: ReadinessConfig;
  drainSignal: NodeJS.Signals;
  restart: { maxFailures: number; window: number; backoffInitial: number; backoffMax: number };
  stats: { dir: string; maxBytes: number; maxNameLength: number; capacities: StatsCapacities };
  /** Memory tracking; absent (hand-built configs in unit tests): off. */
  memory?: MemoryConfig;
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
  /** `auto`: a `node` command gets Baton's preload. @default 'auto' */
  preload?: 'auto' | 'off';
  /** Share of drain-timeout for paced closes. @default 0.5 */
  pacedClose?: number;
}

/** Where stats segments go without `stats.dir`: $BATON_STATS_DIR (tests, unusual hosts), else /dev/shm. */
export function defaultStatsDir(): string {
  return process.env.BATON_STATS_DIR ?? DEFAULT_DIR;
}

/** Validates `raw` (already merged from file and flags); `where` names the source in errors. */
export function validateConfig(raw: unknown, where: string, baseDir: string, file?: string): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const lines = result.error.issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => `  ${formatPath([...issue.path, key])}: unknown key`)
        : [`  ${formatPath(issue.path)}: ${issue.message}`],
    );
    throw new BatonError('ERR_CONFIG', `invalid configuration in ${where}:\n${lines.join('\n')}`);
  }
  const c = result.data;
  if (c.command === undefined) {
    throw new BatonError('ERR_CONFIG', `invalid configuration in ${where}:\n  command: required (or give it after --)`);
  }
  const names = new Set<string>();
  const keys = new Set<string>();
  const listeners = c.listeners.map((l, i): ListenerConfig => {
    const key = formatAddress(l.address);
    const name = l.name ?? defaultName(l.address, names);
    for (const [set, value, what] of [[names, name, 'name'], [keys, key, 'address']] as const) {
      if (set.has(value)) {
        throw new BatonError('ERR_CONFIG', `invalid configuration in ${where}:\n  listeners[${i}].${what}: '${value}' is used twice`);
      }
      set.add(value);
    }
    if (l.mode !== undefined && l.address.kind !== 'unix') {
      throw new BatonError('ERR_CONFIG', `invalid configuration in ${where}:\n  listeners[${i}].mode: only Unix socket listeners have a mode`);
    }
    return { name, address: l.address, key, backlog: l.backlog, ...(l.mode !== undefined ? { mode: l.mode } : {}) };
  });
  if (c.readiness.http) {
    const wanted = c.readiness.http.listener;
    if (wanted !== undefined ? !names.has(wanted) : listeners.length === 0) {
      throw new BatonError(
        'ERR_CONFIG',
        `invalid configuration in ${where}:\n  readiness.http: ${wanted !== undefined ? `no listener named '${wanted}'` : 'needs a listener to send the probe through'}`,
      );
    }
  }
  let controlGroup: number | undefined;
  try {
    if (c['control-group'] !== undefined) controlGroup = resolveGroup(c['control-group']);
  } catch (err) {
    throw new BatonError('ERR_CONFIG', `invalid configuration in ${where}:\n  control-group: ${(err as Error).message}`, { cause: err });
  }
  if (c.readiness.mode === 'tcp' && !listeners.some((l) => l.address.kind === 'tcp')) {
    throw new BatonError('ERR_CONFIG', `invalid configuration in ${where}:\n  readiness: tcp needs a TCP listener to connect through`);
  }
  const command = typeof c.command === 'string' ? c.command.split(/\s+/).filter(Boolean) : c.command;
  return {
    name: c.name,
    command,
    cwd: path.resolve(baseDir, c.cwd ?? '.'),
    env: c.env,
    listeners,
    readyTimeout: c['ready-timeout'],
    drainTimeout: c['drain-timeout'],
    shutdownTimeout: c['shutdown-timeout'],
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
        ...(c.stats.writers !== undefined ? { writers: c.stats.writers } : {}),
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
    ...(c['control-socket'] !== undefined ? { controlSocket: path.resolve(baseDir, c['control-socket']) } : {}),
    ...(controlGroup !== undefined ? { controlGroup } : {}),
    runtimeListeners: c['runtime-listeners'],
    logLevel: c['log-level'],
    ...(file !== undefined ? { file } : {}),
    ...(c.canary ? { canary: toCanaryConfig(c.canary) } : {}),
    maxDraining: c['max-draining'],
    preload: c.preload,
    pacedClose: c['paced-close'],
  };
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

/**
 * Loads the effective configuration: the file (if any) under the command-line overrides.
 * Called again on every reload so a new release or config on disk is picked up.
 */
export function loadConfig(file: string | undefined, overrides: Record<string, unknown>): Config {
  const fromFile = file ? readConfigFile(file) : {};
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (key === 'listeners' && Array.isArray(value) && value.length === 0) continue;
    merged[key] = value;
  }
  const where = file ? `${file}${Object.keys(overrides).length > 0 ? ' and the command line' : ''}` : 'the command line';
  const resolved = file ? path.resolve(file) : undefined;
  return validateConfig(merged, where, resolved ? path.dirname(resolved) : process.cwd(), resolved);
}

/** `tcp8080` or the socket file's name (made safe for LISTEN_FDNAMES), suffixed when taken. */
function defaultName(address: Address, taken: Set<string>): string {
  const base = (address.kind === 'unix' ? path.basename(address.path) : `tcp${address.port}`).replace(/[^A-Za-z0-9_.-]/g, '_');
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  return name;
}

function formatPath(p: readonly PropertyKey[]): string {
  if (p.length === 0) return '(top level)';
  return p
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`))
    .join('');
}
