// The commands that talk to a running instance over its control socket. Kept light on purpose
// (cli.ts imports this module only for them): no config schema, stats segment or supervisor code.
import { controlRequest } from './control-client.ts';
import { formatDuration } from '../../shared/units.ts';
import { clientSocket, type ClientValues } from './client-options.ts';
import type { StatusSnapshot } from '../core/supervisor-types.ts';

/** `baton reload`: waits for the outcome; 1 with the cause when it failed. */
export async function reload(values: ClientValues): Promise<number> {
  // A reload lasts as long as the new generation's ready-timeout: wait for its outcome.
  const query = [values.cold ? 'cold=1' : '', values['wait-canary'] ? 'wait-canary=1' : ''].filter(Boolean).join('&');
  const reply = await controlRequest(await clientSocket(values), 'POST', query ? `/reload?${query}` : '/reload', 3_600_000);
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
  const reply = await controlRequest(await clientSocket(values), 'POST', '/upgrade', 3_600_000);
  const body = reply.body as { ok: boolean; pid?: number; generation?: number; error?: { message: string } };
  if (values.json) process.stdout.write(`${JSON.stringify(body)}\n`);
  else if (body.ok) process.stdout.write(`upgraded: supervisor pid ${body.pid} serves with generation ${body.generation}\n`);
  else process.stderr.write(`baton: ${body.error?.message ?? `upgrade failed (HTTP ${reply.status})`}\n`);
  return body.ok ? 0 : 1;
}

/** `baton status`: the generations table, or JSON. */
export async function status(values: ClientValues): Promise<number> {
  const reply = await controlRequest(await clientSocket(values), 'GET', '/status');
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
  const standby = s.standbys?.length
    ? `standby: ${s.standbys.map((b) => `pid ${b.pid} (worker ${b.worker}${b.waiting ? '' : ', booting'})`).join(', ')}\n`
    : '';
  return `${header}listeners:\n${listeners || '  (none)'}\n\n${table}\n${growing}${health}${canary}${preload}${standby}`;
}

/** `baton stop`. */
export async function stop(values: ClientValues): Promise<number> {
  await controlRequest(await clientSocket(values), 'POST', '/stop');
  process.stdout.write('stopping: every generation drains, then Baton exits\n');
  return 0;
}
