/**
 * What `baton dev` adds to every generation's environment. Its own module, light on imports: the
 * first generation's process is booted ahead (early-start.ts) with it, before the config schema loads.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import { colorWanted } from './output.ts';

/** The instance name of every `baton dev`. */
export const DEV_NAME = 'dev';

/** `--drain-timeout` when not given: the dev config's, and early-start.ts's guess of what the first spawn hands over. */
export const DEV_DRAIN_TIMEOUT = '10s';

/** The dev config's `env`: the app's colors when Baton's have them, and Node's compile cache. */
export function devEnv(stdout: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return {
    // The app's output is piped through Baton: keep its colors when Baton's have them.
    ...(colorWanted(stdout, env) ? { FORCE_COLOR: '1' } : {}),
    // Node's compile cache (its own default place): the preload and the app start about twice
    // as fast from the second generation on. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
    ...(env.NODE_COMPILE_CACHE === undefined ? { NODE_COMPILE_CACHE: path.join(tmpdir(), 'node-compile-cache') } : {}),
  };
}
