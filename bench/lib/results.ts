// Where a bench's JSON goes, and what the output says about the machine's load while it ran.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './baton.ts';

/** bench/results/NAME-DATE.json, with -2, -3… when a run of the same day is already there. */
export function uniqueResultsFile(name: string): string {
  const base = path.join(ROOT, 'bench/results', `${name}-${new Date().toISOString().slice(0, 10)}`);
  for (let i = 1; ; i++) {
    const f = `${base}${i === 1 ? '' : `-${i}`}.json`;
    if (!fs.existsSync(f)) return f;
  }
}

/** The checkout's short commit, if git can tell. */
export function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5_000 }).trim();
  } catch {
    return undefined;
  }
}

/** The 1, 5 and 15-minute load averages now, as `uptime` prints them: other work on a shared machine skews every figure. */
export function loadNow(): string {
  return os.loadavg().map((n) => n.toFixed(2)).join(', ');
}

/** Writes `data` as pretty JSON, creating bench/results/ if needed; returns the path relative to the working directory. */
export function writeResults(file: string, data: unknown): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return path.relative(process.cwd(), file);
}
