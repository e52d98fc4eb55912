import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatAddress } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { loadConfig, type Config, type ListenerConfig } from '../config/config.ts';
import { ConfigError, labelOf } from '../config/config-problems.ts';
import { YamlLines } from '../config/yaml-lines.ts';
import { controlSocketPath } from '../os/paths.ts';
import { controlRequest } from './control-client.ts';

/** One problem `baton check` found: the key, its line in the file when known, and what is wrong. */
export interface CheckProblem {
  key: string;
  line?: number;
  message: string;
}

/**
 * `baton check --config FILE` (like nginx -t): validates the file, the command, the listeners and
 * the child's own section without starting anything. Prints every problem as FILE:LINE: key:
 * message; 0 when there is none, 2 otherwise.
 */
export async function check(args: string[]): Promise<number> {
  let file: string | undefined;
  try {
    file = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true }).values.config;
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
  if (!file) throw new BatonError('ERR_USAGE', 'baton check needs --config FILE');
  const problems = (await checkFile(file)).sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  for (const p of problems) process.stderr.write(`${file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.key}: ${p.message}\n`);
  process.stdout.write(problems.length === 0 ? `${file}: ok\n` : `${file}: ${problems.length} problem${problems.length > 1 ? 's' : ''}\n`);
  return problems.length === 0 ? 0 : 2;
}

/** Every problem of config file `file`; none means `baton run --config FILE` would start. */
export async function checkFile(file: string): Promise<CheckProblem[]> {
  const lines = YamlLines.ofFile(file);
  let config: Config;
  try {
    config = loadConfig(file, {}, { requireCwd: true });
  } catch (err) {
    if (err instanceof ConfigError) {
      return err.problems.map((p) => ({ key: labelOf(p), message: p.message, ...lineField(lines?.lineOf(p.path, p.key === true)) }));
    }
    return [{ key: '(file)', message: (err as Error).message }];
  }
  const at = (key: string, p: readonly PropertyKey[], message: string): CheckProblem => ({ key, message, ...lineField(lines?.lineOf(p)) });
  const problems: CheckProblem[] = [];
  const command = commandProblem(config);
  if (command) problems.push(at('command', ['command'], command));
  const held = await heldByInstance(config);
  for (const [i, l] of config.listeners.entries()) {
    const problem = await bindProblem(l, held);
    if (problem) problems.push(at(`listeners[${i}].address`, ['listeners', i, 'address'], problem));
  }
  problems.push(...(await childProblems(config, file, lines)));
  return problems;
}

function lineField(line: number | undefined): { line?: number } {
  return line === undefined ? {} : { line };
}

/** Why the command could not be started: not found, or not executable. */
function commandProblem(config: Config): string | undefined {
  const program = config.command[0]!;
  const candidates = program.includes('/')
    ? [path.resolve(config.cwd, program)]
    : (config.env.PATH ?? process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, program));
  for (const candidate of candidates) {
    try {
      if (!fs.statSync(candidate).isFile()) continue;
      fs.accessSync(candidate, fs.constants.X_OK);
      return undefined;
    } catch {
      // next candidate
    }
  }
  return program.includes('/') ? `${candidates[0]} is not an executable file` : `'${program}' is not an executable found on PATH`;
}

/** Listener addresses the running instance of this name holds (asked over its control socket), so they count as bindable. */
async function heldByInstance(config: Config): Promise<Set<string>> {
  try {
    const reply = await controlRequest(controlSocketPath(config.name, config.controlSocket), 'GET', '/status', 2_000);
    const listeners = (reply.body as { listeners?: { address: string }[] }).listeners ?? [];
    return new Set(listeners.map((l) => l.address));
  } catch {
    return new Set();
  }
}

/** Why `l` could not be bound now, unless the running instance of this name already holds it. */
async function bindProblem(l: ListenerConfig, held: Set<string>): Promise<string | undefined> {
  if (held.has(l.key)) return undefined;
  if (l.address.kind === 'unix') {
    const dir = path.dirname(l.address.path);
    if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return `the directory ${dir} of ${l.key} does not exist`;
    if (fs.existsSync(l.address.path) && (await connects(l.address.path))) return `${l.key} is in use by another process (not the running instance '${l.name}' names)`;
    return undefined;
  }
  const server = net.createServer();
  const address = l.address;
  return new Promise((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'another process holds it (no running instance of this name does)' : err.code === 'EADDRNOTAVAIL' ? 'no interface of this host has that address' : err.message;
      resolve(`cannot bind ${formatAddress(address)}: ${err.code ?? 'error'}: ${why}`);
    });
    server.listen({ host: address.host, port: address.port, exclusive: true, ipv6Only: address.host.includes(':') && address.host !== '::' }, () => server.close(() => resolve(undefined)));
  });
}

function connects(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * The child's own validation: `check-command`, or for the proxy its `--check`. Its exit 0 means
 * valid; otherwise each line it printed is a problem, placed at its key when the line starts
 * with one (`  app.clusters.api: …`).
 */
async function childProblems(config: Config, file: string, lines: YamlLines | undefined): Promise<CheckProblem[]> {
  const isProxy = config.command.some((arg) => /(^|\/)proxy\/main\.ts$/.test(arg));
  const command = config.checkCommand ?? (isProxy ? [...config.command, '--check'] : undefined);
  if (!command) return [];
  const key = config.checkCommand ? 'check-command' : 'app';
  const result = await new Promise<{ exitCode: number | null; stdout: string; stderr: string; error?: string }>((resolve) => {
    execFile(command[0]!, command.slice(1), { cwd: config.cwd, env: { ...process.env, ...config.env, BATON_CONFIG: path.resolve(file) }, timeout: 60_000 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown }) | null;
      resolve({ exitCode: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr, ...(e && typeof e.code !== 'number' ? { error: e.message } : {}) });
    });
  });
  if (result.exitCode === 0) return [];
  const said = `${result.stderr}\n${result.stdout}`.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '' && !/: ok$/.test(l));
  const found = said.flatMap((text): CheckProblem[] => {
    const m = /^\s+([A-Za-z0-9_.\-[\]]+): (.+)$/.exec(text);
    return m ? [{ key: m[1]!, message: m[2]!, ...lineField(lines?.lineOfLabel(m[1]!)) }] : [];
  });
  if (found.length > 0) return found;
  const why = result.error ?? `exit ${result.exitCode}`;
  return [{ key, message: `${command.join(' ')} failed (${why})${said.length > 0 ? `: ${said.slice(-5).join(' | ')}` : ''}`, ...lineField(lines?.lineOf([key === 'app' ? 'command' : key])) }];
}
