import { statFilter } from '../control/stat-filter.ts';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError } from '../../shared/errors.ts';
import { openSegment, toJSON, toPrometheus, type Stats } from '../../shared/stats/index.ts';
import { defaultStatsDir, loadConfig } from '../config/config.ts';
import { controlRequest } from './control-client.ts';
import { formatDuration } from '../../shared/units.ts';
import { controlSocketPath } from '../os/paths.ts';
import type { StatusSnapshot } from '../core/supervisor.ts';

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

export function clientSocket(values: Pick<ClientValues, 'control-socket' | 'config' | 'name'>): string {
  if (values['control-socket']) return values['control-socket'];
  if (values.config) {
    const config = loadConfig(values.config, values.name ? { name: values.name } : {});
    return controlSocketPath(config.name, config.controlSocket);
  }
  return controlSocketPath(values.name ?? 'baton');
}

/** `baton reload`: waits for the outcome; 1 with the cause when it failed. */
export async function reload(values: ClientValues): Promise<number> {
  // A reload lasts as long as the new generation's ready-timeout: wait for its outcome.
  const query = [values.cold ? 'cold=1' : '', values['wait-canary'] ? 'wait-canary=1' : ''].filter(Boolean).join('&');
  const reply = await controlRequest(clientSocket(values), 'POST', query ? `/reload?${query}` : '/reload', 3_600_000);
  const body = reply.body as { ok: boolean; generation?: number; pid?: number; readyMs?: number; canary?: { reason: string }; error?: { message: string } };
  if (values.json) process.stdout.write(`${JSON.stringify(body)}\n`);
  else if (body.ok) {
    process.stdout.write(`reloaded: generation ${body.generation} (pid ${body.pid}) ready in ${formatDuration(body.readyMs ?? 0)}\n`);
    if (body.canary) process.stdout.write(`canary passed: ${body.canary.reason}\n`);
  }
  else process.stderr.write(`baton: ${body.error?.message ?? `reload failed (HTTP ${reply.status})`}\n`);
  return body.ok ? 0 : 1;
}

/** `baton upgrade`: waits until the new supervisor serves; 1 with the cause when it failed (the old one keeps serving). */
export async function upgrade(values: ClientValues): Promise<number> {
  const reply = await controlRequest(clientSocket(values), 'POST', '/upgrade', 3_600_000);
  const body = reply.body as { ok: boolean; pid?: number; generation?: number; error?: { message: string } };
  if (values.json) process.stdout.write(`${JSON.stringify(body)}\n`);
  else if (body.ok) process.stdout.write(`upgraded: supervisor pid ${body.pid} serves with generation ${body.generation}\n`);
  else process.stderr.write(`baton: ${body.error?.message ?? `upgrade failed (HTTP ${reply.status})`}\n`);
  return body.ok ? 0 : 1;
}

/** `baton status`: the generations table, or JSON. */
export async function status(values: ClientValues): Promise<number> {
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
  const listeners = s.listeners
    .map((l) => `  ${l.name} ${l.address}${l.from ? ` (from ${l.from})` : ''}${(l.strays ?? []).map((h) => `\n    stray: pid ${h.pid} (${h.command}) holds it outside any generation`).join('')}`)
    .join('\n');
  const rows = [['GEN', 'PID', 'STATE', 'UPTIME', 'CONNS', 'EXIT', 'STATUS']];
  for (const g of s.generations) {
    const exit = g.exit ? (g.exit.signal ?? `code ${g.exit.code}`) : '';
    rows.push([String(g.generation), g.workers ? `${g.workers.length} workers` : String(g.pid), g.state, formatDuration(g.uptimeMs), g.connections === null ? '-' : String(g.connections), exit, g.status ?? '']);
    // Each worker under its generation: slot, pid, state, connections, RSS.
    for (const w of g.workers ?? []) {
      const wexit = w.exit ? (w.exit.signal ?? `code ${w.exit.code}`) : '';
      const rss = w.rss !== undefined ? `rss ${(w.rss / 1048576).toFixed(1)} MiB` : '';
      rows.push([`  w${w.worker}`, String(w.pid), w.state, formatDuration(w.uptimeMs), w.connections === null ? '-' : String(w.connections), wexit, [rss, w.status ?? ''].filter(Boolean).join(' ')]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
  const growing = s.generations
    .filter((g) => g.memory?.growing)
    .map((g) => `memory: generation ${g.generation} is growing, +${g.memory?.slopeMiBPerMin} MiB/min (RSS ${((g.memory?.rss ?? 0) / 1048576).toFixed(1)} MiB)${g.memory?.finding ? ` — ${g.memory.finding}` : ''}\n`)
    .join('');
  const health = s.generations
    .filter((g) => g.memory?.loopDelayP99 !== undefined)
    .map((g) => `health: generation ${g.generation} event-loop delay p50 ${g.memory!.loopDelayP50} ms, p99 ${g.memory!.loopDelayP99} ms, utilization ${Math.round((g.memory!.loopUtilization ?? 0) * 100)}%\n`)
    .join('');
  const canary = s.canary
    ? `canary: generation ${s.canary.generation} on probation for ${formatDuration(s.canary.endsInMs)} more (${s.canary.requests} requests, ${s.canary.errors} 5xx); generation ${s.canary.parked.join(', ')} parked\n`
    : '';
  const preload = s.preload ? "drain: Baton's preload is loaded (node command, preload: auto): plain server.listen() drains safely\n" : '';
  return `${header}listeners:\n${listeners || '  (none)'}\n\n${table}\n${growing}${health}${canary}${preload}`;
}

/** `baton stop`. */
export async function stop(values: ClientValues): Promise<number> {
  await controlRequest(clientSocket(values), 'POST', '/stop');
  process.stdout.write('stopping: every generation drains, then Baton exits\n');
  return 0;
}

/** Maps the stats segment of the instance `--config` or `--name` names, read-only (no supervisor needed). */
export function openInstanceSegment(values: { config?: string; name?: string }): Stats {
  const config = values.config ? loadConfig(values.config, values.name ? { name: values.name } : {}) : undefined;
  const instance = config?.name ?? values.name ?? 'baton';
  return openSegment({ instance, dir: config?.stats.dir ?? defaultStatsDir() });
}

/**
 * `baton stats`: reads the shared segment directly, so it answers even when the supervisor's
 * control socket does not.
 */
export function stats(values: ClientValues): number {
  let filter: RegExp | undefined;
  try {
    filter = values.filter === undefined ? undefined : statFilter(values.filter);
  } catch (err) {
    throw new BatonError('ERR_USAGE', `invalid --filter ${JSON.stringify(values.filter)}: ${(err as Error).message}`);
  }
  const segment = openInstanceSegment(values);
  const samples = segment.snapshot(filter);
  // The segment's own generation table: who is alive, even when the supervisor does not answer.
  const generations = segment.generations().map(({ number, pid, state, startedAt }) => ({ generation: number, pid, state, startedAt }));
  if (values.prometheus) process.stdout.write(toPrometheus(samples, { generations: segment.generations() }));
  else if (values.json) process.stdout.write(`${JSON.stringify({ ...(JSON.parse(toJSON(samples)) as object), generations }, null, 2)}\n`);
  else {
    for (const g of generations) {
      process.stdout.write(`# generation ${g.generation} pid ${g.pid} ${g.state} since ${new Date(g.startedAt).toISOString()}\n`);
    }
    for (const s of samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',');
      const value = s.kind === 'histogram' ? `count ${s.count} sum ${s.sum}` : String(s.value);
      process.stdout.write(`${s.name}${labels ? `{${labels}}` : ''} ${value}\n`);
    }
  }
  return 0;
}
