import type http from 'node:http';
import { BatonError } from '../../shared/errors.ts';
import type { EventSink, PublishedEvent } from '../core/events.ts';

/** What GET /events reads (and the control server publishes its refusals to): the supervisor's EventBus. */
export interface EventSource extends EventSink {
  after(seq: number): PublishedEvent[];
  on(name: 'event', fn: (e: PublishedEvent) => void): unknown;
  off(name: 'event', fn: (e: PublishedEvent) => void): unknown;
}

/** The events a GET /events answer starts with, and whether it stays open for those to come. */
export interface EventStreamReply {
  source: EventSource;
  after: number;
  follow: boolean;
}

/** Bytes a reader may leave unread before it is cut off: a stuck reader must not grow the supervisor. */
const MAX_UNREAD = 1 << 20;

/** `?after=N&follow=0|1` of GET /events; throws ERR_USAGE for anything else. */
export function eventStreamQuery(query: URLSearchParams): { after: number; follow: boolean } {
  const after = query.get('after') ?? '0';
  if (!/^\d{1,15}$/.test(after)) throw new BatonError('ERR_USAGE', `invalid after=${JSON.stringify(after.slice(0, 40))}: expected an event number (0 or more)`);
  const follow = query.get('follow') ?? '1';
  if (follow !== '0' && follow !== '1') throw new BatonError('ERR_USAGE', `invalid follow=${JSON.stringify(follow.slice(0, 40))}: expected 0 or 1`);
  return { after: Number(after), follow: follow === '1' };
}

/**
 * Writes the kept events numbered above `after` as NDJSON, one event per line, then (with
 * `follow`) each new one until the client goes or the server closes.
 */
export function pipeEvents(res: http.ServerResponse, reply: EventStreamReply): void {
  const { source } = reply;
  // The pid says whose numbering `seq` is: after an upgrade the successor's events count from 1 again.
  res.writeHead(200, { connection: 'close', 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-baton-pid': String(process.pid) });
  const line = (e: PublishedEvent): string => `${JSON.stringify(e)}\n`;
  const kept = reply.source.after(reply.after).map(line).join('');
  if (!reply.follow) return void res.end(kept);
  if (kept !== '') res.write(kept);
  const onEvent = (e: PublishedEvent): void => {
    res.write(line(e));
    if (res.writableLength > MAX_UNREAD) res.destroy();
  };
  source.on('event', onEvent);
  res.once('close', () => source.off('event', onEvent));
}
