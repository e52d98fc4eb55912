/**
 * The configuration file's schema (zod): every key, its type, default and message. What the
 * parsed file becomes, resolved against its directory and checked as a whole, is config.ts's.
 */
import os from 'node:os';
import { z } from 'zod';
import { parseAddress } from '../../shared/address.ts';
import { bytes, duration } from '../../shared/config-units.ts';
import { canarySchema, maxDrainingSchema, pacedCloseSchema } from '../canary/config.ts';
import type { ReadinessConfig } from './config-types.ts';

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

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
