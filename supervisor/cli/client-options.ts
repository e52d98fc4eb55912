import type { parseArgs, ParseArgsConfig } from 'node:util';
import { controlSocketPath } from '../os/paths.ts';

/** Options of the commands that talk to a running instance. */
export const CLIENT_OPTIONS = {
  prometheus: { type: 'boolean' },
  cold: { type: 'boolean' },
  'wait-canary': { type: 'boolean' },
  filter: { type: 'string' },
  name: { type: 'string' },
  'control-socket': { type: 'string' },
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export type ClientValues = ReturnType<typeof parseArgs<{ options: typeof CLIENT_OPTIONS }>>['values'];

/**
 * The control socket a client command addresses: `--control-socket`, the one `--config` names, or
 * the instance `--name`'s (default `baton`). Only `--config` loads the configuration (and its schema).
 */
export async function clientSocket(values: Pick<ClientValues, 'control-socket' | 'config' | 'name'>): Promise<string> {
  if (values['control-socket']) return values['control-socket'];
  if (values.config) {
    const { loadConfig } = await import('../config/config.ts');
    const config = loadConfig(values.config, values.name ? { name: values.name } : {});
    return controlSocketPath(config.name, config.controlSocket);
  }
  return controlSocketPath(values.name ?? 'baton');
}
