import type { Config } from './config.ts';

/**
 * Settings a running supervisor took once, at start, and cannot take again: a reload that changes
 * one must fail rather than say "reloaded" and keep the old value.
 */
const RESTART_ONLY: { key: string; of: (c: Config) => unknown }[] = [
  { key: 'name', of: (c) => c.name },
  { key: 'control-socket', of: (c) => c.controlSocket },
  { key: 'control-group', of: (c) => c.controlGroup },
  { key: 'stats.dir', of: (c) => c.stats.dir },
  { key: 'log-level', of: (c) => c.logLevel },
];

/** What `next` changes that only a restart (or `baton upgrade`) applies, as one sentence; undefined when nothing. */
export function restartOnlyChanges(current: Config, next: Config): string | undefined {
  const changed = RESTART_ONLY.filter((r) => r.of(current) !== r.of(next));
  if (changed.length === 0) return undefined;
  const show = (v: unknown): string => (v === undefined ? 'unset' : JSON.stringify(v));
  const details = changed.map((r) => `${r.key} from ${show(r.of(current))} to ${show(r.of(next))}`).join('; ');
  const keys = changed.map((r) => r.key).join(', ');
  return `${keys} cannot change on reload (${details}): the supervisor applies ${changed.length > 1 ? 'them' : 'it'} at start; restart Baton or run baton upgrade, or put the old value back`;
}
