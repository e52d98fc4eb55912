import { withPreload } from '../dev/command.ts';
import type { Config } from '../config/config.ts';

/** A command that is a script run by Node: `app.js`, `server.mts`. */
const SCRIPT = /\.(c|m)?(js|ts)$/;

/**
 * What a generation is launched with for a safe drain without the SDK: a `node …` command (or a
 * bare .js/.ts file, run by the Node that runs Baton) gets Baton's preload unless `preload: off`,
 * so a plain `server.listen()` program drains without edits; and the paced-close span the SDK
 * spreads long-lived connections' closes over.
 */
export function drainLaunch(config: Config, command: string, args: string[]): { command: string; args: string[]; env: Record<string, string>; preload: boolean } {
  const env = { BATON_PACED_CLOSE_MS: String(Math.round((config.pacedClose ?? 0.5) * config.drainTimeout)) };
  // Hand-built configs (no preload key) run the command as given; validateConfig defaults it to auto.
  if (config.preload !== 'auto') return { command, args, env, preload: false };
  const full = SCRIPT.test(command) ? [process.execPath, command, ...args] : [command, ...args];
  const preloaded = withPreload(full);
  if (preloaded === full && full[0] === command) return { command, args, env, preload: false };
  const [first, ...rest] = preloaded as [string, ...string[]];
  return { command: first, args: rest, env: { ...env, BATON_PRELOAD: 'auto' }, preload: true };
}
