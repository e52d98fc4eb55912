/**
 * The proxy program: `node proxy/main.ts --config proxy.yaml`, under `baton run --config
 * proxy.yaml` or alone. A configuration error exits 2 with the path in the file and the problem
 * on stderr (under Baton the reload then fails and the serving generation keeps serving).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { generation } from '../child/index.ts';
import { ConfigError, loadConfig } from './config/config-load.ts';
import { startProxy } from './proxy.ts';

const USAGE = 'usage: node proxy/main.ts --config FILE [--check]';

let values: { config?: string; check?: boolean };
try {
  ({ values } = parseArgs({ options: { config: { type: 'string', short: 'c' }, check: { type: 'boolean' } } }));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (!values.config) {
  process.stderr.write(`--config is required\n${USAGE}\n`);
  process.exit(2);
}
const file = path.resolve(values.config);

let config;
try {
  // --check checks the file in full, whatever a previous generation stored.
  config = loadConfig(file, values.check ? { cache: false } : {});
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
if (values.check) {
  for (const warning of config.tls.warnings) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(`${file}: ok\n`);
  process.exit(0);
}

const log = pino({ base: { pid: process.pid, generation: generation().generation, component: 'proxy' }, messageKey: 'msg' }, pino.destination({ fd: 1, sync: true }));
try {
  await startProxy(config, log);
} catch (err) {
  process.stderr.write(`proxy failed to start: ${(err as Error).message}\n`);
  process.exit(1);
}
