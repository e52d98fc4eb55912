import type http2 from 'node:http2';

/** HTTP/2's NO_ERROR code (RFC 9113 §7): a constant, so node:http2 need not be loaded just for it. */
const NO_ERROR = 0;
/** The highest stream id: a GOAWAY carrying it refuses no stream. */
const MAX_STREAM_ID = 2 ** 31 - 1;
/** How long to wait for the PING answer before the final GOAWAY anyway. */
const PING_WAIT_MS = 2000;
/**
 * How long after the PING answer streams are still taken: a client's stack may send its PING
 * ACK ahead of HEADERS it had queued earlier (nghttp2 sends control frames first), so the round
 * trip alone is not a barrier. Envoy waits its drain_timeout here; one second covers loopback and
 * a busy client. @default 1 s
 */
const GRACE_MS = 1000;

/** True for a server of node:http2, plain or secure (node:http2 exports no class to test against). */
export function isHttp2Server(server: object): server is http2.Http2Server | http2.Http2SecureServer {
  for (let p = Object.getPrototypeOf(server) as object | null; p; p = Object.getPrototypeOf(p) as object | null) {
    const name = (p as { constructor?: { name?: string } }).constructor?.name;
    if (name === 'Http2SecureServer' || name === 'Http2Server') return true;
  }
  return false;
}

/**
 * Drains an HTTP/2 session without failing a stream (RFC 9113 §6.8): a first GOAWAY with the
 * highest stream id tells the client to open no more streams here; after a PING round trip and a
 * grace period every stream it sent before that has arrived, and the final GOAWAY names the last
 * one. Streams in flight finish; the session closes after the last.
 */
export function drainSession(session: http2.Http2Session): void {
  if (session.closed || session.destroyed) return;
  try {
    session.goaway(NO_ERROR, MAX_STREAM_ID);
  } catch {
    // the session is going anyway
  }
  let answered = false;
  const close = (): void => {
    if (!session.closed && !session.destroyed) session.close();
  };
  const afterPing = (): void => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    setTimeout(close, GRACE_MS).unref();
  };
  const timer = setTimeout(afterPing, PING_WAIT_MS);
  timer.unref();
  let pinged = false;
  try {
    pinged = session.ping(() => afterPing());
  } catch {
    pinged = false;
  }
  if (!pinged) afterPing();
}
