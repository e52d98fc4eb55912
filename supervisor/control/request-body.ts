import type http from 'node:http';
import type { Readable } from 'node:stream';

/** How reading a request body ended: read whole, over the limit, or the client went (or stalled past its deadline). */
export type BodyOutcome = { kind: 'read'; text: string } | { kind: 'too-large' } | { kind: 'gone'; why: string };

/**
 * The request body, read within `limit` bytes and `timeoutMs`. Never rejects: a client that closes
 * mid-body, sends a broken chunk or stalls is an outcome to answer (or drop), not an exception
 * that could reach the supervisor's top level. An oversized body is never read in full nor buffered.
 */
export function readBody(req: Readable & Pick<http.IncomingMessage, 'headers'>, limit: number, timeoutMs = 0): Promise<BodyOutcome> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.resolve({ kind: 'too-large' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const settle = (outcome: BodyOutcome): void => {
      clearTimeout(timer);
      req.off('data', take);
      req.off('end', ended);
      req.off('error', failed);
      req.off('close', closed);
      // Whatever happens later on this stream (a reset after we stopped reading) is not ours to throw.
      req.on('error', () => {});
      resolve(outcome);
    };
    const take = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.pause();
      settle({ kind: 'too-large' });
    };
    const ended = (): void => settle({ kind: 'read', text: Buffer.concat(chunks).toString('utf8') });
    const failed = (err: Error): void => settle({ kind: 'gone', why: err.message });
    const closed = (): void => settle({ kind: 'gone', why: 'the client closed the connection before the body ended' });
    if (timeoutMs > 0) timer = setTimeout(() => settle({ kind: 'gone', why: `the body did not arrive within ${timeoutMs} ms` }), timeoutMs);
    req.on('data', take);
    req.once('end', ended);
    req.once('error', failed);
    req.once('close', closed);
  });
}
