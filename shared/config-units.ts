import * as v from 'valibot';
import { parsedBy } from './schema.ts';
import { parseBytes, parseDuration } from './units.ts';

/** A config duration: milliseconds or `250ms`, `10s`, `1m`, `2h`; becomes milliseconds. */
export const duration = v.pipe(
  v.union([v.pipe(v.number(), v.minValue(0)), v.string()], 'expected a number of milliseconds or a value like 250ms, 10s, 1m'),
  parsedBy(parseDuration),
);

/** A config size: bytes or `512KiB`, `64MiB`, `1GiB`; becomes bytes. */
export const bytes = v.pipe(v.union([v.number(), v.string()], 'expected a number of bytes or a value like 64MiB'), parsedBy(parseBytes));
