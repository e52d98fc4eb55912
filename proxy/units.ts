/** Durations and sizes as the proxy's YAML writes them (the same forms as Baton's own keys). */
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** `250ms`, `10s`, `1.5m`, `2h` or a number of milliseconds; throws saying what was expected. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
    if (match) return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!);
  }
  throw new TypeError(`invalid duration '${value}': expected a number of milliseconds or a value like 250ms, 10s, 1m`);
}

/** `512KiB`, `64MiB` or a number of bytes; throws saying what was expected. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return value;
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?\s*$/.exec(value);
    if (match) return Math.floor(Number(match[1]) * SIZE_UNITS[match[2] ?? 'B']!);
  }
  throw new TypeError(`invalid size '${value}': expected a number of bytes or a value like 8KiB, 1MiB`);
}
