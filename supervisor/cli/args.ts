import type { ParseArgsConfig } from 'node:util';
import { BatonError } from '../../shared/errors.ts';

// Not `import … from 'node:util'`: an ES module import of a built-in builds a facade of every
// export, a few ms of CPU that every client command would pay (see control-client.ts).
const { parseArgs } = process.getBuiltinModule('node:util');

/** `parseArgs`, strict, with a bad option or argument thrown as ERR_USAGE (exit 2 with the usage). */
export function parse<O extends ParseArgsConfig['options']>(args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
}
