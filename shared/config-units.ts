import { z } from 'zod';
import { parseBytes, parseDuration } from './units.ts';

/** A config duration: milliseconds or `250ms`, `10s`, `1m`, `2h`; becomes milliseconds. */
export const duration = z
  .union([z.number().nonnegative(), z.string()], { error: 'expected a number of milliseconds or a value like 250ms, 10s, 1m' })
  .transform((value, ctx) => {
    try {
      return parseDuration(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** A config size: bytes or `512KiB`, `64MiB`, `1GiB`; becomes bytes. */
export const bytes = z.union([z.number(), z.string()], { error: 'expected a number of bytes or a value like 64MiB' }).transform((value, ctx) => {
  try {
    return parseBytes(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
