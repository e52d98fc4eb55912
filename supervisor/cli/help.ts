/**
 * Help for one command (`baton reload --help`) cut from the CLI's usage text, so the two cannot
 * disagree, and the nearest command to a mistyped one.
 */

/** True when `--help`/`-h` comes before any `--` (after it, the words are the child's). */
export function wantsHelp(args: string[]): boolean {
  const separator = args.indexOf('--');
  return (separator === -1 ? args : args.slice(0, separator)).some((a) => a === '--help' || a === '-h');
}

/**
 * The usage lines of `command`: each `  baton COMMAND …` line with its continuation lines, then
 * its `Options of COMMAND` section when the usage has one. Undefined for a command it lacks.
 */
export function commandUsage(usage: string, command: string): string | undefined {
  const lines = usage.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const words = lines[i]!.trim().split(/\s+/);
    if (words[0] !== 'baton' || words[1] !== command || !lines[i]!.startsWith('  baton ')) continue;
    out.push(lines[i]!);
    // Continuations are indented past the command column.
    while (i + 1 < lines.length && /^ {10,}\S/.test(lines[i + 1]!)) out.push(lines[(i += 1)]!);
  }
  if (out.length === 0) return undefined;
  const options = lines.findIndex((l) => l.startsWith(`Options of ${command}`));
  if (options !== -1) {
    out.push('');
    for (let i = options; i < lines.length && lines[i]!.trim() !== ''; i += 1) out.push(lines[i]!);
  }
  return `Usage:\n${out.join('\n')}\n`;
}

/** The known command closest to `typed` (edit distance at most 2, or it begins with `typed`), if any; the first of equals. */
export function nearestCommand(typed: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    // A prefix ("heap" of heap-snapshot) counts as two edits: a closer spelling wins over it.
    const distance = Math.min(editDistance(typed, name), name.startsWith(typed) && typed.length >= 3 ? 2 : Infinity);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Levenshtein distance, with a transposition counting as one edit ("relaod" → "reload"). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j += 1) d[0]![j] = j;
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
