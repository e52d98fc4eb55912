/**
 * The Config `baton dev` composes in memory from its command line: no file, the developer's own
 * defaults (every interface for the app's listen, one failure before waiting for a save, a
 * standby booted while they edit).
 */
import { BatonError } from '../../shared/errors.ts';
import { parseDuration } from '../../shared/units.ts';
import { validateConfig, type Config } from '../config/config.ts';
import type { parseDevArgs } from './command.ts';
import { DEV_DRAIN_TIMEOUT, DEV_NAME, devEnv } from './dev-env.ts';

type DevValues = ReturnType<typeof parseDevArgs>['values'];

/** The checked Config for running `command` in `root` with the dev command's `values`. */
export function devConfig(command: string[], values: DevValues, root: string): Config {
  return validateConfig(
    {
      name: DEV_NAME,
      command,
      env: devEnv(),
      listeners: (values.listen ?? []).map((address) => ({ address })),
      'ready-timeout': values['ready-timeout'] ?? '10s',
      'drain-timeout': values['drain-timeout'] ?? DEV_DRAIN_TIMEOUT,
      'shutdown-timeout': '2s',
      // The developer runs their own app: its listen(3000) means every interface, as without Baton.
      'runtime-listeners': values['runtime-listeners'] ?? 'any',
      // A crash waits for the next save (or r) instead of a restart loop of the same broken code.
      restart: { 'max-failures': 1 },
      // The next process boots while the developer edits: a save costs the app's import, not Node's start.
      standby: true,
      'log-level': values.verbose ? 'debug' : 'info',
    },
    'the baton dev command line',
    root,
  );
}

/** --debounce as milliseconds. @default 100 */
export function debounceOption(value: string | undefined): number {
  if (value === undefined) return 100;
  try {
    return parseDuration(value);
  } catch (err) {
    throw new BatonError('ERR_USAGE', `--debounce: ${(err as Error).message}`, { cause: err });
  }
}
