import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError } from '../../shared/errors.ts';

/** `parseArgs`, strict, with a bad option or argument thrown as ERR_USAGE (exit 2 with the usage). */
export function parse<O extends ParseArgsConfig['options']>(args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
}
