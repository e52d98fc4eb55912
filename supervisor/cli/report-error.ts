import { isBatonError } from '../../shared/errors.ts';
import { USAGE } from './usage.ts';

/** Prints what went wrong; the exit code: 2 for bad usage or configuration, else 1. */
export function reportError(err: unknown): number {
  if (isBatonError(err)) {
    process.stderr.write(`baton: ${err.message}\n`);
    if (err.code === 'ERR_USAGE') process.stderr.write(`\n${USAGE}`);
    // A listener that cannot be bound is a configuration problem too (taken, or not this host's address).
    return err.code === 'ERR_USAGE' || err.code === 'ERR_CONFIG' || err.code === 'ERR_LISTENER' ? 2 : 1;
  }
  const e = err as { code?: string; message?: string };
  if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`baton: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  process.stderr.write(`baton: ${(err as Error).stack ?? String(err)}\n`);
  return 1;
}
