import { BatonError } from '../../shared/errors.ts';
import type { ProcessExit } from '../os/os.ts';

/** "exited with code 1" / "was killed by SIGKILL". */
export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

export function describeCount(connections: number | null): string {
  if (connections === null) return 'an unknown number of connections (the program does not report them)';
  return connections === 1 ? '1 connection' : `${connections} connections`;
}

export function stderrSuffix(lines: string[]): string {
  return lines.length > 0 ? `; last stderr lines:\n${lines.map((l) => `  | ${l}`).join('\n')}` : '';
}

/** ERR_STATS_INCOMPATIBLE when a worker's code writes another stats layout than the supervisor's segment has. */
export function statsLayoutMismatch(label: string, theirs: number | undefined, ours: number | undefined): BatonError | undefined {
  if (theirs === undefined || ours === undefined || theirs === ours) return undefined;
  return new BatonError(
    'ERR_STATS_INCOMPATIBLE',
    `${label} writes stats layout version ${theirs} but this supervisor's segment is version ${ours}: ` +
      'sharing it would corrupt it; upgrade the supervisor to the release first',
  );
}
