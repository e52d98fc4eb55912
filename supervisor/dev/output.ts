/**
 * What `baton dev` prints: the app's lines prefixed with their generation (pino JSON lines
 * prettified), Baton's own lines, a one-line summary per reload, and a failed start's error
 * reduced to the `file:line` it points at.
 */
import path from 'node:path';
import { lazyModule } from '../../shared/lazy-module.ts';

// pino-pretty and the ~45 modules under it load with the app's first pino line, not with `baton
// dev` (issue #19: the app's first answer waits for the runner's start), nor at all for an app
// that logs plain text.
const pinoPretty = lazyModule<typeof import('pino-pretty')>(import.meta.url, 'pino-pretty');

const MIB = 1024 * 1024;
const GEN_COLORS = [36, 35, 33, 34, 32, 96, 95, 93];

export interface Paint {
  dim(s: string): string;
  bold(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  gen(id: number, s: string): string;
}

/** ANSI colors when `enabled`, plain text otherwise. */
export function paint(enabled: boolean): Paint {
  const sgr = (code: number, s: string): string => (enabled ? `\x1b[${code}m${s}\x1b[0m` : s);
  return {
    dim: (s) => sgr(2, s),
    bold: (s) => sgr(1, s),
    red: (s) => sgr(31, s),
    green: (s) => sgr(32, s),
    yellow: (s) => sgr(33, s),
    gen: (id, s) => sgr(GEN_COLORS[(id - 1) % GEN_COLORS.length] as number, s),
  };
}

/** Colors on a terminal, unless NO_COLOR; FORCE_COLOR forces them. */
export function colorWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true;
}

export interface Location {
  /** Path relative to the project when inside it. */
  file: string;
  line: number;
  column?: number;
  /** What the line that named the location said, or the error line near it. */
  message: string;
}

const LOCATION = /(?:file:\/\/)?(\/[^\s:()'"]+):(\d+)(?::(\d+))?/;

/**
 * The first place in the project (not node_modules, not Node's internals) that `lines` point at —
 * a syntax error (`/app/x.ts:3:7: ERROR: …`), a throw's header (`/app/x.ts:3`) or a stack frame —
 * with the error message that goes with it.
 */
export function findLocation(lines: string[], root: string): Location | undefined {
  const errorLine = lines.find((l) => /^\s*(\w*Error\b|\w+Error \[|Error:)/.test(l) && !/^\s*at /.test(l))?.trim();
  for (const text of lines) {
    const m = LOCATION.exec(text);
    if (!m) continue;
    const abs = m[1] as string;
    if (abs.includes('/node_modules/') || !abs.startsWith(`${root}/`)) continue;
    const rest = text.slice((m.index ?? 0) + m[0].length).replace(/^:\s*/, '').trim();
    const own = rest.length > 1 && !/^\)?$/.test(rest) ? rest : '';
    return {
      file: path.relative(root, abs),
      line: Number(m[2]),
      ...(m[3] !== undefined ? { column: Number(m[3]) } : {}),
      message: own || errorLine || '',
    };
  }
  return undefined;
}

export function formatLocation(l: Location): string {
  return `${l.file}:${l.line}${l.column !== undefined ? `:${l.column}` : ''}`;
}

export function mib(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${(bytes / MIB).toFixed(1)} MiB`;
}

/** "+1.2 MiB" / "-0.4 MiB" */
export function mibDelta(now: number | undefined, before: number | undefined): string {
  if (now === undefined || before === undefined) return '';
  const d = (now - before) / MIB;
  return `${d >= 0 ? '+' : '-'}${Math.abs(d).toFixed(1)} MiB`;
}

/** "app.ts" / "app.ts, lib/db.ts" / "app.ts and 4 more" (relative to the project). */
export function describeFiles(files: string[], root: string): string {
  const rel = files.map((f) => (f.startsWith(`${root}/`) ? path.relative(root, f) : f));
  if (rel.length <= 2) return rel.join(', ');
  return `${rel.slice(0, 2).join(', ')} and ${rel.length - 2} more`;
}

/** Writes every line `baton dev` shows. */
export class DevOutput {
  readonly paint: Paint;
  private readonly out: NodeJS.WritableStream;
  private readonly color: boolean;
  private prettifier: ((obj: unknown) => string) | undefined;
  private readonly pretty = (obj: unknown): string =>
    (this.prettifier ??= pinoPretty().prettyFactory({ colorize: this.color, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }))(obj);

  constructor(out: NodeJS.WritableStream & { isTTY?: boolean }, color = colorWanted(out)) {
    this.out = out;
    this.color = color;
    this.paint = paint(color);
  }

  /** One line the app wrote, prefixed with its generation; a pino JSON line is prettified. */
  app(generation: number, stream: 'stdout' | 'stderr', line: string): void {
    const prefix = this.paint.gen(generation, `gen ${generation}`.padEnd(6)) + this.paint.dim('│ ');
    const pretty = prettyLine(line, this.pretty);
    const text = pretty ?? line;
    const body = text.replace(/\n$/, '').split('\n');
    this.write(body.map((l) => prefix + (stream === 'stderr' && pretty === undefined ? this.paint.red(l) : l)).join('\n'));
  }

  /** Baton's own line. */
  say(text: string): void {
    this.write(`${this.paint.bold('baton ')}${this.paint.dim('│ ')}${text}`);
  }

  ok(text: string): void {
    this.say(`${this.paint.green('✔')} ${text}`);
  }

  fail(text: string): void {
    this.say(`${this.paint.red('✖')} ${text}`);
  }

  /** An indented detail under the line before. */
  detail(text: string): void {
    this.say(`  ${text}`);
  }

  /** A failed start's cause: its `file:line` and message when found, else its last stderr lines. */
  cause(lines: string[], root: string): void {
    const where = findLocation(lines, root);
    if (where) {
      this.detail(`${this.paint.bold(formatLocation(where))}  ${where.message}`);
      return;
    }
    const tail = lines.filter((l) => l.trim().length > 0).slice(-6);
    for (const l of tail) this.detail(this.paint.dim(`| ${l}`));
  }

  private write(text: string): void {
    this.out.write(`${text}\n`);
  }
}

/** A pino line (JSON with a numeric level and a time) made readable; undefined for anything else. */
function prettyLine(line: string, pretty: (obj: unknown) => string): string | undefined {
  if (!line.startsWith('{') || !line.endsWith('}')) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return undefined;
  }
  const o = obj as { level?: unknown; time?: unknown };
  if (typeof o.level !== 'number' || o.time === undefined) return undefined;
  return pretty(obj);
}
