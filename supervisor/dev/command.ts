/**
 * The command line of `baton dev`: its options, the app's entry (or `-- CMD`), and the command a
 * generation runs — TypeScript through tsx, and the preload so an unmodified `listen(3000)` gets
 * the socket Baton holds.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError } from '../../shared/errors.ts';
import { DEFAULT_EXTENSIONS } from './watch.ts';

export const DEV_USAGE = `  baton dev [options] APP [ARGS...]        run APP (.ts through tsx, or .js) and hot-restart it on every save
  baton dev [options] -- CMD [ARGS...]     ... for a command (a node command gets the preload)

Options of dev:
  --watch GLOB               what to watch; repeatable [the working directory: files with --ext]
  --ignore GLOB              what not to watch, on top of node_modules, .git, dist, build, coverage; repeatable
  --ext LIST                 extensions that count when no --watch is given [${DEFAULT_EXTENSIONS.join(',')}]
  --debounce DUR             quiet time that ends a burst of saves: one reload per burst [100ms]
  --listen ADDR              hold this listener from the start; repeatable [none: the app's listen() asks]
  --runtime-listeners P      loopback | any | none: what the app's listen() may get bound [any]
  --ready-timeout DUR        how long a new generation may take to become ready [10s]
  --drain-timeout DUR        how long an old generation may drain [10s]
  --verbose                  also show the supervisor's own log
Keys: r reload, q quit; Ctrl-C stops (twice: kills).
`;

export const DEV_OPTIONS = {
  watch: { type: 'string', multiple: true },
  ignore: { type: 'string', multiple: true },
  ext: { type: 'string' },
  debounce: { type: 'string' },
  listen: { type: 'string', multiple: true },
  'runtime-listeners': { type: 'string' },
  'ready-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export type DevValues = ReturnType<typeof parseArgs<{ options: typeof DEV_OPTIONS; strict: true }>>['values'];

export interface DevArgs {
  values: DevValues;
  /** The app's entry file (absolute), when given as `baton dev APP`. */
  entry?: string;
  /** What a generation runs. */
  command: string[];
}

const TS = /\.(ts|tsx|mts|cts)$/;

/**
 * Splits `args` into Baton's options (before the app) and the app with its own arguments: in
 * `baton dev --debounce 50 app.ts --port 3000`, `--port 3000` belongs to the app.
 */
export function parseDevArgs(args: string[]): DevArgs {
  const separator = args.indexOf('--');
  let own = separator === -1 ? args : args.slice(0, separator);
  let app = separator === -1 ? [] : args.slice(separator + 1);
  if (separator === -1) {
    let i = 0;
    while (i < own.length) {
      const a = own[i] as string;
      if (!a.startsWith('-')) break;
      const name = a.replace(/^--?/, '').split('=')[0] as string;
      const spec = (DEV_OPTIONS as Record<string, { type: string; short?: string }>)[name] ??
        Object.values(DEV_OPTIONS).find((o) => 'short' in o && o.short === name);
      i += spec?.type === 'string' && !a.includes('=') ? 2 : 1;
    }
    app = own.slice(i);
    own = own.slice(0, i);
  }
  let values: DevValues;
  try {
    values = parseArgs({ args: own, options: DEV_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
  if (values.help) return { values, command: [] };
  if (app.length === 0) throw new BatonError('ERR_USAGE', 'baton dev: which app? Give a file (baton dev app.ts) or a command after --');
  if (separator !== -1) return { values, command: withPreload(app) };
  const entry = path.resolve(app[0] as string);
  if (!fs.existsSync(entry)) throw new BatonError('ERR_USAGE', `baton dev: cannot find ${app[0]}`);
  return { values, entry, command: nodeCommand(entry, app.slice(1)) };
}

/** `node [--import tsx] --import register ENTRY ARGS`, with the Node that runs Baton. */
export function nodeCommand(entry: string, args: string[]): string[] {
  const loaders = TS.test(entry) ? ['--import', tsxLoader(entry)] : [];
  return [process.execPath, ...loaders, '--import', registerUrl(), entry, ...args];
}

/** A `node …` command gets the preload as its first option; any other command runs as given. */
export function withPreload(command: string[]): string[] {
  const [first, ...rest] = command as [string, ...string[]];
  if (!isNodeCommand(first)) return command;
  if (rest.some((a, i) => a.includes('child/register') && rest[i - 1] === '--import')) return command;
  return [first, '--import', registerUrl(), ...rest];
}

/** True for the Node that runs Baton, or a `node` (`node22`…) found on PATH. */
export function isNodeCommand(command: string): boolean {
  return command === process.execPath || /^node(\d+)?$/.test(path.basename(command));
}

/** tsx, an optional peer dependency: the app's own first, else one installed beside Baton. */
function tsxLoader(entry: string): string {
  for (const from of [entry, fileURLToPath(import.meta.url)]) {
    try {
      return pathToFileURL(createRequire(from).resolve('tsx')).href;
    } catch {
      // not from here
    }
  }
  throw new BatonError('ERR_USAGE', `baton dev: ${path.basename(entry)} is TypeScript, which baton dev runs through tsx, and tsx is not installed: npm install --save-dev tsx`);
}

function registerUrl(): string {
  // .ts in a checkout, .js in the compiled dist/ of an install: the extension this module has.
  return new URL(`../../child/register${path.extname(import.meta.url)}`, import.meta.url).href;
}
