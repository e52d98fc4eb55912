/**
 * The configuration: the YAML (or JSON) file and the command line's flags, merged, checked
 * against the schema (config-schema.ts), then resolved and checked as a whole (paths against the
 * file's directory, listeners that overlap, a cwd that is missing), every problem listed at once.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { formatAddress, isLocal, parseAddress, type Address } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { DEFAULT_DIR } from '../../shared/stats/index.ts';
import { resolveGroup } from '../control/access.ts';
import { toCanaryConfig } from '../canary/config.ts';
import { statsWriters, usableCpus } from './workers.ts';
import { ConfigError, overlappingListener, type ConfigProblem } from './config-problems.ts';
import { configSchema } from './config-schema.ts';
import { problemsOf, safeParse } from '../../shared/schema.ts';
import type { Config, ListenerConfig, MemoryConfig } from './config-types.ts';

export type { RawConfig } from './config-schema.ts';
export type { Config, ListenerConfig, MemoryConfig, MemoryLimit, ReadinessConfig } from './config-types.ts';

/** Where stats segments go without `stats.dir`: $BATON_STATS_DIR (tests, unusual hosts), else /dev/shm. */
export function defaultStatsDir(): string {
  return process.env.BATON_STATS_DIR ?? DEFAULT_DIR;
}

/** Validates `raw` (already merged from file and flags); `where` names the source in errors. Throws a ConfigError listing every problem. */
export function validateConfig(raw: unknown, where: string, baseDir: string, file?: string): Config {
  const result = safeParse(configSchema, raw ?? {});
  if (!result.success) throw new ConfigError(where, problemsOf(result.issues));
  const c = result.output;
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
        ...statsWriters(c.stats.writers, workers, where, c['max-draining']),
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
    ...(c.standby ? { standby: true } : {}),
    ...(c['cpu-scheduling'] !== undefined ? { cpuScheduling: c['cpu-scheduling'] } : {}),
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
  // Required only when there is a file to parse: a supervisor configured on its command line
  // never loads the YAML parser (~3 MiB of its RSS).
  const { parseDocument } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
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
