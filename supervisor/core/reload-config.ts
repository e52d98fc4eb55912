import type { Logger } from 'pino';
import { BatonError } from '../../shared/errors.ts';
import { hotRestartVersion } from '../../shared/stats/index.ts';
import type { Config } from '../config/config.ts';
import { restartOnlyChanges } from '../config/reload-rules.ts';
import { announce, NoEvents, type EventSink } from './events.ts';
import type { StatsSink } from './stats-sink.ts';

/**
 * Checks that `next` may replace `current` in a reload: no restart-only setting changed, and a stats layout the shared
 * segment can hold (or, `cold`, replaces the segment). Throws ERR_CONFIG or ERR_STATS_INCOMPATIBLE.
 */
export function checkReloadConfig(current: Config, next: Config, sink: StatsSink, cold: boolean, log: Logger, events: EventSink = NoEvents): void {
  const restartOnly = restartOnlyChanges(current, next);
  if (restartOnly) throw new BatonError('ERR_CONFIG', restartOnly);
  const version = hotRestartVersion(next.stats.capacities);
  if (cold) {
    sink.replace(next.stats);
    const message = 'cold reload: stats were reset to zero in a new segment';
    announce(events, log, 'warn', { type: 'stats', state: 'reset', message }, message, { version });
  } else if (version !== sink.version) {
    throw new BatonError(
      'ERR_STATS_INCOMPATIBLE',
      `the stats layout changes from ${sink.version} to ${version}: a hot restart would corrupt the shared segment; ` +
        'use baton reload --cold to replace the generation with stats restarted from zero',
    );
  }
}
