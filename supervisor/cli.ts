import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError, isBatonError } from '../shared/errors.ts';
import { PROTOCOL_VERSION } from '../shared/protocol.ts';
import { loadConfig, type Config } from './config.ts';
import { controlRequest } from './control-client.ts';
import { ControlServer } from './control-server.ts';
import { formatDuration } from './duration.ts';
import { createLogger } from './logger.ts';
import { controlSocketPath } from './paths.ts';
import { realOs } from './real-os.ts';
import { Supervisor, type StatusSnapshot } from './supervisor.ts';

const USAGE = `Usage:
  baton run --config FILE [options]        run the supervisor in the foreground
  baton run [options] -- CMD [ARGS...]     ... for a command given on the command line
  baton reload [--name N]                  start a new generation; waits for the outcome
  baton status [--name N] [--json]         list generations
  baton stop [--name N]                    drain every generation and exit
  baton version

Options of run (each is also a config key):
  -c, --config FILE          YAML config, re-read on every reload
  --name NAME                instance name (control socket) [baton]
  --listen ADDR              listener to hold: HOST:PORT, [V6]:PORT, PORT (loopback), unix:/path; repeatable
  --ready-timeout DUR        how long a new generation may take to become ready [10s]
  --drain-timeout DUR        how long an old generation may drain before it is asked to exit [30s]
  --shutdown-timeout DUR     how long after that before it is killed [5s]
  --readiness MODE           auto | sdk | accepting | http:/PATH (accepting, and a GET answers 2xx) [auto]
  --drain-signal SIG         sent to drain a program that does not use the SDK [SIGTERM]
  --control-socket PATH      control socket [$XDG_RUNTIME_DIR/baton/NAME.sock or /tmp/baton-UID/NAME.sock]
  --runtime-listeners P      loopback | any | none: binds a generation may ask for [loopback]
  --log-level LEVEL          trace | debug | info | warn | error [info]
`;

const RUN_OPTIONS = {
  config: { type: 'string', short: 'c' },
  name: { type: 'string' },
  listen: { type: 'string', multiple: true },
  'ready-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  readiness: { type: 'string' },
  'drain-signal': { type: 'string' },
  'control-socket': { type: 'string' },
  'runtime-listeners': { type: 'string' },
  'log-level': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const CLIENT_OPTIONS = {
  name: { type: 'string' },
  'control-socket': { type: 'string' },
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** Runs the CLI; resolves to the exit code (0 ok, 1 failed, 2 bad usage or configuration). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await run(rest);
      case 'reload':
        return await reload(rest);
      case 'status':
        return await status(rest);
      case 'stop':
        return await stop(rest);
      case 'version':
      case '--version':
        process.stdout.write(`baton ${await packageVersion()} (protocol ${PROTOCOL_VERSION})\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new BatonError('ERR_USAGE', `unknown command '${command}'`);
    }
  } catch (err) {
    return report(err);
  }
}

function report(err: unknown): number {
  if (isBatonError(err)) {
    process.stderr.write(`baton: ${err.message}\n`);
    if (err.code === 'ERR_USAGE') process.stderr.write(`\n${USAGE}`);
    return err.code === 'ERR_USAGE' || err.code === 'ERR_CONFIG' ? 2 : 1;
  }
  const e = err as { code?: string; message?: string };
  if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`baton: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  process.stderr.write(`baton: ${(err as Error).stack ?? String(err)}\n`);
  return 1;
}

function parse<O extends ParseArgsConfig['options']>(args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
}

function overridesFrom(values: Record<string, unknown>, command: string[]): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  for (const key of Object.keys(RUN_OPTIONS)) {
    if (key === 'config' || key === 'listen' || values[key] === undefined) continue;
    overrides[key] = values[key];
  }
  const listen = values.listen as string[] | undefined;
  if (listen && listen.length > 0) overrides.listeners = listen.map((address) => ({ address }));
  if (command.length > 0) overrides.command = command;
  return overrides;
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, RUN_OPTIONS, true);
  const separator = args.indexOf('--');
  if (positionals.length > 0 && separator === -1) {
    throw new BatonError('ERR_USAGE', `unexpected argument '${positionals[0]}': put the command after --`);
  }
  const file = values.config;
  const overrides = overridesFrom(values, positionals);
  const reread = (): Config => loadConfig(file, overrides);
  const config = reread();

  const log = await createLogger(config.logLevel, config.name);
  const supervisor = new Supervisor(config, { os: realOs, log, loadConfig: reread });
  const control = new ControlServer(controlSocketPath(config.name, config.controlSocket), supervisor, log);
  await control.listen();

  return await new Promise<number>((resolve) => {
    let interrupts = 0;
    let exitCode = 0;
    supervisor.once('stopped', () => {
      control.close();
      resolve(exitCode);
    });
    // Exit non-zero so a service manager sees the failure and can act on it.
    supervisor.once('fatal', () => {
      exitCode = 1;
      void supervisor.stop('crash loop');
      supervisor.forceStop();
    });
    const interrupt = (signal: NodeJS.Signals): void => {
      interrupts += 1;
      if (interrupts === 1) void supervisor.stop(`${signal} received`);
      else supervisor.forceStop();
    };
    process.on('SIGTERM', interrupt);
    process.on('SIGINT', interrupt);
    process.on('SIGHUP', () => {
      supervisor.reload().catch(() => {});
    });
    try {
      supervisor.start();
    } catch (err) {
      log.fatal({ err }, 'cannot start');
      control.close();
      resolve(report(err));
    }
  });
}

function clientSocket(values: { name?: string; 'control-socket'?: string; config?: string }): string {
  if (values['control-socket']) return values['control-socket'];
  if (values.config) {
    const config = loadConfig(values.config, values.name ? { name: values.name } : {});
    return controlSocketPath(config.name, config.controlSocket);
  }
  return controlSocketPath(values.name ?? 'baton');
}

async function reload(args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS);
  const reply = await controlRequest(clientSocket(values), 'POST', '/reload');
  const body = reply.body as { ok: boolean; generation?: number; pid?: number; readyMs?: number; error?: { message: string } };
  if (values.json) process.stdout.write(`${JSON.stringify(body)}\n`);
  else if (body.ok) process.stdout.write(`reloaded: generation ${body.generation} (pid ${body.pid}) ready in ${formatDuration(body.readyMs ?? 0)}\n`);
  else process.stderr.write(`baton: ${body.error?.message ?? `reload failed (HTTP ${reply.status})`}\n`);
  return body.ok ? 0 : 1;
}

async function status(args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS);
  const reply = await controlRequest(clientSocket(values), 'GET', '/status');
  const snapshot = reply.body as StatusSnapshot;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(snapshot, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(formatStatus(snapshot));
  return 0;
}

/** The human-readable `baton status` table. */
export function formatStatus(s: StatusSnapshot): string {
  const header = `instance ${s.instance} (supervisor pid ${s.pid}, up ${formatDuration(s.uptimeMs)})${s.stopping ? ', stopping' : ''}\n`;
  const listeners = s.listeners.map((l) => `  ${l.name} ${l.address}`).join('\n');
  const rows = [['GEN', 'PID', 'STATE', 'UPTIME', 'CONNS', 'EXIT']];
  for (const g of s.generations) {
    const exit = g.exit ? (g.exit.signal ?? `code ${g.exit.code}`) : '';
    rows.push([String(g.generation), String(g.pid), g.state, formatDuration(g.uptimeMs), g.connections === null ? '-' : String(g.connections), exit]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
  return `${header}listeners:\n${listeners || '  (none)'}\n\n${table}\n`;
}

async function stop(args: string[]): Promise<number> {
  const { values } = parse(args, CLIENT_OPTIONS);
  await controlRequest(clientSocket(values), 'POST', '/stop');
  process.stdout.write('stopping: every generation drains, then Baton exits\n');
  return 0;
}

async function packageVersion(): Promise<string> {
  const { default: pkg } = await import('../package.json', { with: { type: 'json' } });
  return pkg.version;
}
