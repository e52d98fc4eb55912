import type http2 from 'node:http2';

/** HTTP/2 error codes (RFC 9113 §7): constants, so node:http2 need not be loaded just for them. */
const NO_ERROR = 0;
const REFUSED_STREAM = 7;
/** How long to wait for the PING answer before closing anyway. */
const PING_WAIT_MS = 2000;

/** True for a server of node:http2, plain or secure (node:http2 exports no class to test against). */
export function isHttp2Server(server: object): server is http2.Http2Server | http2.Http2SecureServer {
  for (let p = Object.getPrototypeOf(server) as object | null; p; p = Object.getPrototypeOf(p) as object | null) {
    const name = (p as { constructor?: { name?: string } }).constructor?.name;
    if (name === 'Http2SecureServer' || name === 'Http2Server') return true;
  }
  return false;
}

/**
 * Drains an HTTP/2 session so that every stream is either answered or refused in a way the client
 * can retry (RFC 9113 §6.8, §8.7): one GOAWAY naming the last stream taken, then a PING; once the
 * client has answered it (it has read the GOAWAY and refused what it had queued) the session
 * closes after its last stream in flight.
 *
 * Why not the two-step pattern (GOAWAY with 2^31-1, PING, final GOAWAY): nghttp2 stops taking new
 * streams once it has sent any GOAWAY, and Node offers no shutdown notice (the one GOAWAY that does
 * not). A stream that crossed a 2^31-1 GOAWAY on the wire was silently ignored — no answer, no
 * RST_STREAM — and only the final GOAWAY told the client; when the connection ended before the
 * client read that one, the stream died with CANCEL and no hint it was never processed. With the
 * real last id, a stream that crosses the GOAWAY is above it, and the client's stack refuses it
 * at once (REFUSED_STREAM), which is safe to retry.
 *
 * Why streams above that id are refused here: nghttp2 fixes the frame's id when it is submitted
 * but writes it on a later tick, and takes the streams that arrive in between. They are above
 * the id the client will read, so the client counts them as not processed; the application must
 * not see them (RST_STREAM REFUSED_STREAM, as Node does for a stream after close()).
 *
 * Why the PING before closing: closing sends FIN as soon as no stream is left. A client that gets
 * the GOAWAY and the FIN in one read may see its socket close before it has refused the streams
 * it had queued but not sent (Node's client then ends them with CANCEL, no error); the PING
 * answer comes after the client has processed the GOAWAY. A client that answers the GOAWAY with
 * its own GOAWAY (Node's does) makes Node close the session at once, which is as good a barrier.
 */
export function drainSession(session: http2.Http2Session): void {
  if (session.closed || session.destroyed || drained.has(session)) return;
  drained.add(session);
  // Read and announced in one synchronous step: no frame is processed in between.
  const last = session.state.lastProcStreamID ?? 0;
  refuseAbove(session, last);
  try {
    // 0 (no stream yet) makes Node use nghttp2's last processed id, which is 0 too.
    session.goaway(NO_ERROR, last);
  } catch {
    // the session is going anyway
  }
  let closing = false;
  const close = (): void => {
    if (closing) return;
    closing = true;
    clearTimeout(timer);
    if (!session.closed && !session.destroyed) session.close();
  };
  const timer = setTimeout(close, PING_WAIT_MS);
  timer.unref();
  let pinged = false;
  try {
    pinged = session.ping(() => close());
  } catch {
    pinged = false;
  }
  if (!pinged) close();
}

/** Sessions already draining (a second call changes nothing). */
const drained = new WeakSet<http2.Http2Session>();

/** Streams with an id above `last` are reset with REFUSED_STREAM before any 'stream' listener runs. */
function refuseAbove(session: http2.Http2Session, last: number): void {
  // Node emits a new stream through the instance's emit (looked up on each call): the one
  // place ahead of every listener, the server's and the compatibility layer's included.
  const emit = session.emit;
  session.emit = function (this: http2.Http2Session, event: string | symbol, ...args: unknown[]): boolean {
    const stream = args[0] as http2.ServerHttp2Stream | undefined;
    if (event === 'stream' && stream && (stream.id ?? 0) > last) {
      // Closing with a code other than NO_ERROR or CANCEL emits 'error' on the stream.
      stream.on('error', () => {});
      stream.close(REFUSED_STREAM);
      return false;
    }
    return emit.call(this, event, ...args);
  } as typeof session.emit;
}
