import { z } from 'zod';
import { duration } from '../../shared/config-units.ts';
import type { CanaryConfig } from './evaluate.ts';

/** A share: `1%`, or a fraction between 0 and 1. */
const share = z
  .union([z.number().min(0).max(1), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a percentage such as "1%" or a fraction such as 0.01')])
  .transform((v) => (typeof v === 'number' ? v : Number(v.slice(0, -1)) / 100))
  .refine((v) => v >= 0 && v <= 1, 'expected a share between 0% and 100%');

/** The `canary:` block (absent: no window, the previous generation drains at once). */
export const canarySchema = z.strictObject({
  window: duration.refine((ms) => ms > 0, 'expected a window longer than 0').default(30_000),
  'max-error-rate': share.default(0.01),
  'max-p99-ratio': z.number().min(1).default(2),
  /** A p99 rise below this is noise, whatever the ratio. */
  'p99-floor': duration.default(20),
  'min-requests': z.number().int().min(1).default(100),
});

/** `max-draining`: at most this many generations drain at once; the oldest is hurried beyond it. */
export const maxDrainingSchema = z.number().int().min(1).max(64).default(3);

/** The validated block as the canary reads it. */
export function toCanaryConfig(c: z.output<typeof canarySchema>): CanaryConfig {
  return {
    window: c.window,
    maxErrorRate: c['max-error-rate'],
    maxP99Ratio: c['max-p99-ratio'],
    p99Floor: c['p99-floor'],
    minRequests: c['min-requests'],
  };
}

/** `paced-close`: the last share of drain-timeout over which long-lived connections are closed (0: all at the deadline). */
export const pacedCloseSchema = share.default(0.5);
