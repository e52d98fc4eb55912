/** Durations and sizes as Baton's YAML and flags write them, shared by the supervisor's and the proxy's config. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `250ms`, `10s`, `1.5m`, `2h` or a number of milliseconds; throws saying what was expected. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
    if (match) return Math.round(Number(match[1]) * UNITS[match[2] ?? 'ms']!);
  }
  throw new TypeError(`invalid duration '${value}': expected a number of milliseconds or a value like 250ms, 10s, 1m`);
}

/** Formats milliseconds for people: 850ms, 12.3s, 4m05s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.floor((ms % 60_000) / 1000);
  if (minutes < 60) return `${minutes}m${String(seconds).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

const SIZE_UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Parses `512KiB`, `64MiB`, `1GiB` or a number of bytes; throws saying what was expected. */
export function parseBytes(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return value;
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?\s*$/.exec(value);
    if (match) return Math.floor(Number(match[1]) * SIZE_UNITS[match[2] ?? 'B']!);
  }
  throw new TypeError(`invalid size '${value}': expected a number of bytes or a value like 512KiB, 64MiB, 1GiB`);
}
