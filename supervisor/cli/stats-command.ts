// `baton stats`: reads the instance's shared stats segment directly, without its supervisor.
import { BatonError } from '../../shared/errors.ts';
import { DEFAULT_DIR, openSegment, toJSON, toPrometheus, type Stats } from '../../shared/stats/index.ts';
import { statFilter } from '../control/stat-filter.ts';
import type { ClientValues } from './client-options.ts';

/** Maps the stats segment of the instance `--config` or `--name` names, read-only (no supervisor needed). */
export async function openInstanceSegment(values: { config?: string; name?: string }): Promise<Stats> {
  if (values.config) {
    const { loadConfig } = await import('../config/config.ts');
    const config = loadConfig(values.config, values.name ? { name: values.name } : {});
    return openSegment({ instance: config.name, dir: config.stats.dir });
  }
  // config.ts's defaultStatsDir(), without loading the config schema for it.
  return openSegment({ instance: values.name ?? 'baton', dir: process.env.BATON_STATS_DIR ?? DEFAULT_DIR });
}

/**
 * `baton stats`: reads the shared segment directly, so it answers even when the supervisor's
 * control socket does not.
 */
export async function stats(values: ClientValues): Promise<number> {
  let filter: RegExp | undefined;
  try {
    filter = values.filter === undefined ? undefined : statFilter(values.filter);
  } catch (err) {
    throw new BatonError('ERR_USAGE', `invalid --filter ${JSON.stringify(values.filter)}: ${(err as Error).message}`);
  }
  const segment = await openInstanceSegment(values);
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
