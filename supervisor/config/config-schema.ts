/**
 * The configuration file's schema (valibot): every key, its type, default and message. What the
 * parsed file becomes, resolved against its directory and checked as a whole, is config.ts's.
 */
import os from 'node:os';
import * as v from 'valibot';
import { parseAddress } from '../../shared/address.ts';
import { bytes, duration } from '../../shared/config-units.ts';
import { parsedBy, strictObject } from '../../shared/schema.ts';
import { canarySchema, maxDrainingSchema, pacedCloseSchema } from '../canary/config.ts';
import type { ReadinessConfig } from './config-types.ts';

const address = v.pipe(v.string(), parsedBy(parseAddress));

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
const name = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 letters, digits, "_", "." or "-"'));
const COMMAND = 'expected a command string or a non-empty list of strings';
const command = v.union([v.pipe(v.string(), v.minLength(1)), v.pipe(v.array(v.string()), v.minLength(1))], COMMAND);

const fileMode = v.pipe(
  v.union([v.pipe(v.number(), v.integer()), v.pipe(v.string(), v.regex(/^0?[0-7]{3,4}$/, 'expected an octal mode such as "0660"'))]),
  v.transform((m) => (typeof m === 'number' ? m : parseInt(m, 8))),
  v.check((m) => m >= 0 && m <= 0o7777, 'expected a mode between 0000 and 7777'),
);

/** A memory limit: bytes of RSS, or `{ rss, heap }` (heap: V8 heap used). By the input's type, so a bad size says why. */
const limit = v.lazy((input) =>
  typeof input === 'object' && input !== null
    ? strictObject({ rss: v.optional(bytes), heap: v.optional(bytes) })
    : v.pipe(bytes, v.transform((rss): { rss?: number; heap?: number } => ({ rss }))),
);

const listener = strictObject({
  name: v.optional(name),
  address,
  backlog: v.optional(int(1, 65535), 511),
  mode: v.optional(fileMode),
  /** Overrides the top-level `balance` for this listener (an admin endpoint may want `shared`). */
  balance: v.optional(v.picklist(['shared', 'reuseport'])),
});

const SIGNAL_NAME = /^SIG[A-Z0-9]+$/;
const signalName = v.pipe(
  v.string(),
  v.regex(SIGNAL_NAME, 'expected a signal name such as "SIGTERM"'),
  // Only a well-formed name is looked up: a malformed one has its message already.
  v.check(
    (s) => !SIGNAL_NAME.test(s) || Object.hasOwn(os.constants.signals, s),
    (issue) => `unknown signal '${String(issue.input)}': expected one of ${Object.keys(os.constants.signals).join(', ')}`,
  ),
);

const READINESS = 'expected auto, sdk, accepting, notify, tcp or http:/PATH';
const readiness = v.pipe(
  v.optional(
    v.union(
      [
        v.picklist(['auto', 'sdk', 'accepting', 'notify', 'tcp']),
        v.pipe(v.string(), v.regex(/^http:\//, READINESS)),
        strictObject({ http: v.pipe(v.string(), v.regex(/^\//, 'expected a path such as /healthz')), listener: v.optional(v.string()) }),
      ],
      `${READINESS}, or { http: PATH, listener: NAME }`,
    ),
    'auto',
  ),
  v.transform((r): ReadinessConfig => {
    if (typeof r === 'object') return { mode: 'accepting', http: { path: r.http, ...(r.listener ? { listener: r.listener } : {}) } };
    if (r.startsWith('http:')) return { mode: 'accepting', http: { path: r.slice('http:'.length) } };
    return { mode: r as ReadinessConfig['mode'] };
  }),
);

const digits = (message: string) => v.pipe(v.string(), v.regex(/^\d+$/, message), v.transform(Number));

export const configSchema = strictObject({
  name: v.optional(name, 'baton'),
  command: v.optional(command),
  cwd: v.optional(v.string()),
  /** Validates the child's own configuration for `baton check` (exit 0: valid); never run by `baton run`. */
  'check-command': v.optional(command),
  env: v.optional(v.record(v.string(), v.string()), {}),
  listeners: v.optional(v.array(listener), []),
  'ready-timeout': v.optional(duration, 10_000),
  'drain-timeout': v.optional(duration, 30_000),
  'shutdown-timeout': v.optional(duration, 5_000),
  'accept-grace': v.optional(duration, 5_000),
  warmup: v.optional(duration, 0),
  readiness,
  'drain-signal': v.optional(signalName, 'SIGTERM'),
  restart: v.optional(
    strictObject({
      'max-failures': v.optional(int(1), 5),
      window: v.optional(duration, 60_000),
      'backoff-initial': v.optional(duration, 100),
      'backoff-max': v.optional(duration, 10_000),
    }),
    {},
  ),
  stats: v.optional(
    strictObject({
      dir: v.optional(v.string()),
      'max-bytes': v.optional(bytes, 64 * 1024 * 1024),
      'max-name-length': v.optional(int(16, 65536), 1024),
      /** Capacities change the segment's hot-restart version: changing one needs a cold reload. */
      writers: v.optional(int(2, 1024)),
      'stats-per-segment': v.optional(int(16)),
      'arena-bytes': v.optional(bytes),
    }),
    {},
  ),
  memory: v.optional(
    strictObject({
      /** Sampling interval; 0 turns memory tracking off. */
      interval: v.optional(duration, 5_000),
      /** The span summaries, slopes and growth detection look at. */
      window: v.optional(duration, 10 * 60_000),
      /** How much series each generation keeps (and for how long after it exits). */
      history: v.optional(duration, 60 * 60_000),
      'soft-limit': v.optional(limit),
      'hard-limit': v.optional(limit),
      /** At most one hard-limit replacement per cooldown (default: the window). */
      'replace-cooldown': v.optional(duration),
      growth: v.optional(
        strictObject({
          'min-slope': v.optional(bytes, 1024 * 1024),
          /** …and the fitted growth across the window must reach this (noise on a short window is not a leak). */
          'min-growth': v.optional(bytes, 4 * 1024 * 1024),
          /** How steady the growth must be: r² of the least-squares fit over the window. */
          'min-r2': v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1)), 0.8),
          /** Load is flat when open connections move by at most this share of their mean (or 2). */
          'load-tolerance': v.optional(v.pipe(v.number(), v.minValue(0)), 0.5),
        }),
        {},
      ),
      allocator: v.optional(v.picklist(['default', 'jemalloc']), 'default'),
      'profile-dir': v.optional(v.string()),
    }),
    {},
  ),
  /** The Prometheus listener: the supervisor's /metrics over TCP (off without `listen`). */
  metrics: v.optional(
    strictObject({
      /** HOST:PORT to serve GET /metrics on; loopback only unless allow-remote. */
      listen: v.optional(v.string()),
      /** Lets `listen` be an address other hosts reach (the metrics are readable by anyone who can connect). */
      'allow-remote': v.optional(v.boolean(), false),
    }),
    {},
  ),
  'control-socket': v.optional(v.string()),
  /** A group (name or gid) whose members may use the control socket besides its owner. */
  'control-group': v.optional(v.union([v.pipe(v.string(), v.minLength(1)), int(0)])),
  'runtime-listeners': v.optional(v.picklist(['loopback', 'any', 'none']), 'loopback'),
  'log-level': v.optional(v.picklist(['trace', 'debug', 'info', 'warn', 'error', 'fatal']), 'info'),
  /** Opaque to the supervisor: read by the child (e.g. the proxy's routes and clusters). */
  app: v.optional(v.unknown()),
  /** A canary window after each reload (supervisor/canary); absent: off. */
  canary: v.optional(canarySchema),
  'max-draining': maxDrainingSchema,
  /** Bytes of RSS the draining generations may hold together; the oldest is hurried beyond it. */
  'draining-memory-budget': v.optional(bytes),
  /** Boot each worker slot's next Node process ahead, so a reload or restart only imports the app. */
  standby: v.optional(v.boolean(), false),
  /** Whether a `node` command gets Baton's preload (safe drain without the SDK). */
  preload: v.optional(v.picklist(['auto', 'off']), 'auto'),
  /** The last share of drain-timeout over which the SDK's pacedClose() spreads long-lived connections' closes. */
  'paced-close': pacedCloseSchema,
  /** Worker processes per generation: a number, or `auto` (the CPUs this process may use). */
  workers: v.optional(
    v.pipe(
      v.union([v.literal('auto'), v.number(), digits('expected a number of workers or auto')], 'expected a number of workers or auto'),
      v.union([v.literal('auto'), int(1, 256)]),
    ),
    1,
  ),
  /** How connections reach the workers of a TCP listener: one shared socket, or one SO_REUSEPORT socket per worker. */
  balance: v.optional(v.picklist(['shared', 'reuseport']), 'reuseport'),
  /** The workers' CPU scheduling policy (sched(7)); unset: the supervisor's own, inherited. */
  'cpu-scheduling': v.optional(v.picklist(['other', 'batch', 'idle'])),
  /** How a reload replaces the workers: all at once, or slot by slot. */
  rollout: v.optional(v.picklist(['all-at-once', 'rolling']), 'all-at-once'),
  /** `rollout: rolling`: how many processes beyond `workers` may be alive at once. */
  'max-surge': v.optional(v.pipe(v.union([v.number(), digits('expected a number')], 'expected a number'), int(1)), 1),
});

export type RawConfig = v.InferInput<typeof configSchema>;
export type ParsedConfig = v.InferOutput<typeof configSchema>;
