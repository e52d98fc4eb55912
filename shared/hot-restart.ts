/**
 * The one hot-restart compatibility string, like Envoy's --hot-restart-version: the protocol a
 * generation speaks, the state a supervisor hands its successor, and the stats segment's layout.
 * Two Baton releases with the same string can replace each other by reload or `baton upgrade`.
 */
import { HANDOVER_VERSION, PROTOCOL_VERSION } from './protocol.ts';
import { hotRestartVersion as statsVersion, type StatsCapacities } from './stats/index.ts';

/** `baton.p1.h1.stats1.w16.…`: every version and capacity that must match across a hot restart. */
export function hotRestartCompatibility(capacities: StatsCapacities = {}): string {
  return `baton.p${PROTOCOL_VERSION}.h${HANDOVER_VERSION}.${statsVersion(capacities).replace(/^baton\./, 'stats')}`;
}
