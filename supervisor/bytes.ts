const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** Parses `512KiB`, `64MiB`, `1GiB` or a number of bytes; throws saying what was expected. */
export function parseBytes(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return value;
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?\s*$/.exec(value);
    if (match) return Math.floor(Number(match[1]) * UNITS[match[2] ?? 'B']!);
  }
  throw new TypeError(`invalid size '${value}': expected a number of bytes or a value like 512KiB, 64MiB, 1GiB`);
}
