import * as v from 'valibot';
import { duration } from '../../shared/config-units.ts';
import { strictObject } from '../../shared/schema.ts';
import type { CanaryConfig } from './evaluate.ts';

/** A share: `1%`, or a fraction between 0 and 1. */
const share = v.pipe(
  v.union([
    v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
    v.pipe(v.string(), v.regex(/^\d+(\.\d+)?%$/, 'expected a percentage such as "1%" or a fraction such as 0.01')),
  ]),
  v.transform((s) => (typeof s === 'number' ? s : Number(s.slice(0, -1)) / 100)),
  v.check((s) => s >= 0 && s <= 1, 'expected a share between 0% and 100%'),
);

/** The `canary:` block (absent: no window, the previous generation drains at once). */
export const canarySchema = strictObject({
  window: v.optional(v.pipe(duration, v.check((ms) => ms > 0, 'expected a window longer than 0')), 30_000),
  'max-error-rate': v.optional(share, 0.01),
  'max-p99-ratio': v.optional(v.pipe(v.number(), v.minValue(1)), 2),
  /** A p99 rise below this is noise, whatever the ratio. */
  'p99-floor': v.optional(duration, 20),
  'min-requests': v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 100),
});

/** `max-draining`: at most this many generations drain at once; the oldest is hurried beyond it. */
export const maxDrainingSchema = v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(64)), 3);

/** The validated block as the canary reads it. */
export function toCanaryConfig(c: v.InferOutput<typeof canarySchema>): CanaryConfig {
  return {
    window: c.window,
    maxErrorRate: c['max-error-rate'],
    maxP99Ratio: c['max-p99-ratio'],
    p99Floor: c['p99-floor'],
    minRequests: c['min-requests'],
  };
}

/** `paced-close`: the last share of drain-timeout over which long-lived connections are closed (0: all at the deadline). */
export const pacedCloseSchema = v.optional(share, 0.5);
