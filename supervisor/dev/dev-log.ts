/**
 * The supervisor's log under `baton dev`: records, not lines. A warning is shown unless it is the
 * log side of an event the runner tells in its own words (reloads, starts, exits, crashes);
 * --verbose shows every record.
 */
import pino, { type Logger } from 'pino';
import type { BatonEventType } from '../core/events.ts';
import type { DevOutput } from './output.ts';

/** Events the runner tells in its own words: their log lines are not shown again. */
const TOLD = new Set<BatonEventType>(['generation-active', 'worker-state', 'generation-state', 'reload-failed', 'restarting', 'crash-loop']);

/** A logger whose records `out` shows as described above. */
export function devLogger(out: DevOutput, verbose: boolean): Logger {
  return pino({ level: verbose ? 'debug' : 'info', base: null }, {
    write: (text: string) => {
      let r: { level: number; msg?: string; event?: string; err?: { message?: string } };
      try {
        r = JSON.parse(text) as typeof r;
      } catch {
        return;
      }
      const msg = r.msg ?? '';
      const told = r.event !== undefined && TOLD.has(r.event as BatonEventType);
      if (r.level >= 40 && !told) out.say(out.paint.yellow(`${msg}${r.err?.message ? `: ${firstLine(r.err.message)}` : ''}`));
      else if (verbose) out.say(out.paint.dim(msg));
    },
  });
}

/** A failure's message cut to its first line, without the stderr tail and with `gen N` for a generation. */
export function firstLine(message: string): string {
  return (message.split('; last stderr lines')[0] ?? message).split('\n')[0]?.replace(/^reload failed: /, '').replace(/generation (\d+) \(pid \d+\)/, 'gen $1') ?? '';
}
