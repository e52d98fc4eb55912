/**
 * `baton memory`, `baton heap-snapshot`, `baton heap-profile`: the memory commands of the CLI,
 * talking to a running instance over its control socket.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError, isBatonError } from '../../shared/errors.ts';
import { childFiguresByWriter, MEMORY_FILTER, type ChildMemory } from '../../shared/memory-figures.ts';
import { clientSocket, CLIENT_OPTIONS } from './client-options.ts';
import { openInstanceSegment } from './stats-command.ts';
import { procMemoryProbe } from '../memory/proc.ts';
import { controlRequest } from './control-client.ts';
import { formatDuration } from '../../shared/units.ts';
import type { GenerationMemory } from '../memory/monitor.ts';
import type { Figure } from '../memory/history.ts';

export const MEMORY_OPTIONS = {
  ...CLIENT_OPTIONS,
  seconds: { type: 'string' },
  segment: { type: 'boolean' },
  retire: { type: 'boolean' },
  'in-place': { type: 'boolean' },
  compare: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof MEMORY_OPTIONS }>>['values'];

function parse(args: string[]): { values: Values; generation: number | undefined } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: MEMORY_OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
  const [gen, extra] = parsed.positionals;
  if (extra !== undefined) throw new BatonError('ERR_USAGE', `unexpected argument '${extra}'`);
  if (gen !== undefined && !/^\d+$/.test(gen)) throw new BatonError('ERR_USAGE', `expected a generation number, not '${gen}'`);
  return { values: parsed.values, generation: gen === undefined ? undefined : Number(gen) };
}

const MiB = 1024 * 1024;
const ROWS: [Figure, string][] = [
  ['rss', 'RSS'],
  ['pss', 'PSS'],
  ['privateDirty', 'private dirty'],
  ['anonymous', 'anonymous'],
  ['swap', 'swap'],
  ['heapUsed', 'V8 heap used'],
  ['gcHeapUsed', 'V8 heap after GC'],
  ['v8Committed', 'V8 committed'],
  ['external', 'external'],
  ['mallocInUse', 'malloc in use'],
  ['mallocFreeResident', 'malloc free (resident)'],
  ['mallocReturned', 'malloc free (returned)'],
  ['mallocMmapped', 'malloc mmapped'],
  ['jemallocAllocated', 'jemalloc allocated'],
  ['jemallocActive', 'jemalloc active'],
  ['jemallocResident', 'jemalloc resident'],
  ['jemallocRetained', 'jemalloc retained'],
];

/** A figure that cannot be had is shown as this, never as 0. */
const UNKNOWN = '–';

/** `baton memory`. */
export async function memory(args: string[]): Promise<number> {
  const { values, generation } = parse(args);
  if (values.segment) return fromSegment(values, generation);
  const socket = await clientSocket(values);
  const query = generation === undefined ? '' : `?generation=${generation}`;
  if (values.json) {
    const reply = await controlRequest(socket, 'GET', `/memory/series${query}`);
    const found = (reply.body as { generations?: unknown[] }).generations;
    if (reply.status === 200 && generation !== undefined && found?.length === 0) return noSuchGeneration(generation);
    process.stdout.write(`${JSON.stringify(reply.body)}\n`);
    return reply.status === 200 ? 0 : 1;
  }
  let reply;
  try {
    reply = await controlRequest(socket, 'GET', '/memory');
  } catch (err) {
    if (!isBatonError(err, 'ERR_CONTROL_UNREACHABLE')) throw err;
    process.stderr.write(`baton: ${err.message}; reading the shared segment instead\n`);
    return fromSegment(values, generation);
  }
  if (reply.status !== 200) {
    process.stderr.write(`baton: ${(reply.body as { error?: { message: string } }).error?.message ?? `HTTP ${reply.status}`}\n`);
    return 1;
  }
  const body = reply.body as { interval: number; window: number; generations: GenerationMemory[] };
  const gens = body.generations.filter((g) => generation === undefined || g.generation === generation);
  if (generation !== undefined && gens.length === 0) return noSuchGeneration(generation, body.generations.map((g) => g.generation));
  process.stdout.write(formatMemory(gens, body.window));
  return 0;
}

/** `baton memory 9` when the supervisor knows no generation 9: say which it knows, exit 1. */
function noSuchGeneration(generation: number, known?: number[]): number {
  const list = known === undefined ? '' : known.length === 0 ? ' (none sampled yet)' : ` (known: ${known.join(', ')})`;
  process.stderr.write(`baton: no generation ${generation}${list}\n`);
  return 1;
}

export function formatMemory(gens: GenerationMemory[], windowMs: number): string {
  if (gens.length === 0) return 'no memory samples yet\n';
  const out: string[] = [];
  for (const g of gens) {
    const state = g.exitedAt !== undefined ? 'exited' : g.growing ? 'GROWING' : 'live';
    out.push(`generation ${g.generation} (pid ${g.pid}, ${state}) — window ${formatDuration(windowMs)}`);
    const rows = [['', 'NOW', 'MIN', 'MAX', 'SLOPE MiB/min']];
    const jemalloc = g.allocator.kind === 'jemalloc';
    for (const [f, label] of ROWS) {
      // Under jemalloc glibc's figures describe almost nothing; without it jemalloc's do not exist.
      if (jemalloc ? f.startsWith('malloc') : f.startsWith('jemalloc')) continue;
      const s = g.summary[f];
      if (!s) {
        if (f.startsWith('malloc') || f.startsWith('jemalloc')) rows.push([label, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]);
        continue;
      }
      rows.push([label, mib(s.now), mib(s.min), mib(s.max), (s.slopePerMin / MiB).toFixed(2)]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) out.push(`  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`);
    const f = g.fragmentation;
    const pct = (v: number | null): string => (v === null ? UNKNOWN : `${(v * 100).toFixed(1)}%`);
    const a = g.allocator;
    const opt = (v: number | null): string => (v === null ? UNKNOWN : mib(v));
    if (jemalloc && a.jemalloc) {
      const je = a.jemalloc;
      out.push(`  fragmentation: V8 ${pct(f.v8)}, jemalloc ${pct(je.active > 0 ? 1 - je.allocated / je.active : null)}`);
    } else out.push(`  fragmentation: V8 ${pct(f.v8)}, malloc ${pct(f.malloc)}, malloc scatter ${pct(f.mallocScatter)}`);
    out.push(
      `  allocator (${a.kind ?? UNKNOWN}): allocated ${opt(a.allocated)}, heap size ${opt(a.heapSize)}, free resident ${opt(a.freeInHeap)}, ` +
        `returned ${opt(a.returned)}, released ${mib(a.released)}`,
    );
    if (g.leak) out.push(`  leak watch: ${g.leak.message || 'nothing to judge yet'}`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)}M`;
}

/** `baton heap-snapshot [GEN]` and `baton heap-profile [GEN] --seconds N`. */
export async function profile(kind: 'heap-snapshot' | 'heap-profile' | 'cpu-profile', args: string[]): Promise<number> {
  const { values, generation } = parse(args);
  const params = new URLSearchParams();
  if (generation !== undefined) params.set('generation', String(generation));
  if (kind !== 'heap-snapshot') params.set('seconds', values.seconds ?? '10');
  else {
    if (values.retire && values['in-place']) throw new BatonError('ERR_USAGE', '--retire and --in-place exclude each other');
    if (values.retire || values.compare) params.set('retire', 'true');
    if (values['in-place']) params.set('retire', 'false');
    if (values.compare) params.set('compare', 'true');
  }
  // A profile takes its seconds, a snapshot of a large heap a while: wait well past either.
  const reply = await controlRequest(await clientSocket(values), 'POST', `/${kind}?${params}`, (Number(params.get('seconds') ?? 0) + 120) * 1000);
  const body = reply.body as { ok: boolean; generation?: number; path?: string; bytes?: number; compare?: { path: string }; error?: { message: string } };
  if (values.json) process.stdout.write(`${JSON.stringify(body)}\n`);
  else if (body.ok) process.stdout.write(`${body.path}\n${body.compare ? `${body.compare.path}\n` : ''}`);
  else process.stderr.write(`baton: ${body.error?.message ?? `HTTP ${reply.status}`}\n`);
  return body.ok ? 0 : 1;
}

/**
 * `baton memory --segment`: the children's latest gauges from the shared segment and RSS/PSS read
 * from /proc by this command itself, for each generation in the segment's table — no supervisor needed.
 */
async function fromSegment(values: Values, generation: number | undefined): Promise<number> {
  const stats = await openInstanceSegment(values);
  const child = new Map<number, Partial<ChildMemory>>();
  for (const m of childFiguresByWriter(stats.snapshot(MEMORY_FILTER)).values()) {
    if (m.generation) child.set(m.generation, m);
  }
  const rows = [['GEN', 'PID', 'STATE', 'RSS', 'PSS', 'PRIV DIRTY', 'HEAP USED', 'MALLOC USED', 'FREE RESIDENT', 'CHILD SAMPLE']];
  const opt = (v: number | undefined): string => (v === undefined || v < 0 ? UNKNOWN : mib(v));
  const entries = stats.generations().filter((g) => g.number > 0 && (generation === undefined || g.number === generation));
  if (generation !== undefined && entries.length === 0) return noSuchGeneration(generation, stats.generations().filter((g) => g.number > 0).map((g) => g.number));
  const out: Record<string, unknown>[] = [];
  for (const g of entries) {
    const proc = procMemoryProbe.read(g.pid);
    const c = child.get(g.number) ?? {};
    const age = c.sampledAt ? `${formatDuration(Date.now() - c.sampledAt)} ago` : UNKNOWN;
    out.push({ generation: g.number, pid: g.pid, state: g.state, ...proc, ...c });
    const used = (c.jemallocAllocated ?? -1) >= 0 ? c.jemallocAllocated : c.mallocInUse;
    const free = (c.jemallocResident ?? -1) >= 0 ? c.jemallocResident! - c.jemallocAllocated! : c.mallocFreeResident;
    rows.push([String(g.number), String(g.pid), g.state, opt(proc?.rss), opt(proc?.pss), opt(proc?.privateDirty), opt(c.heapUsed), opt(used), opt(free), age]);
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ generations: out })}\n`);
    return 0;
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(`${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`);
  return 0;
}
