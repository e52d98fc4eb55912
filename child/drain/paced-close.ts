/** A connection a paced close can end: a net.Socket, a WebSocket, a stream. */
export interface Closable {
  end(): void;
  destroy(): void;
  readonly destroyed?: boolean;
}

/**
 * The closes end this long before the drain deadline (or a tenth of the span, if longer): each
 * close still takes a FIN round trip and the drain callbacks after the last one, and the SIGTERM
 * at the deadline must find nothing to cut.
 */
const MARGIN_MS = 300;

/**
 * Ends `items` one by one at random moments spread over the last `spanMs` before `deadline`
 * (epoch ms), so long-lived clients (WebSockets, TCP streams) keep their connection as long as
 * the drain allows and do not all reconnect in the same second. A connection that is still open
 * a moment after its end() is destroyed. Resolves once every item has been ended.
 */
export function pacedClose(items: Iterable<Closable>, deadline: number, spanMs: number, now = Date.now()): Promise<void> {
  const all = [...items];
  const last = Math.max(now, deadline - Math.max(MARGIN_MS, spanMs / 10));
  const first = Math.max(now, last - spanMs);
  return new Promise((resolve) => {
    if (all.length === 0) return resolve();
    let left = all.length;
    for (const item of all) {
      const timer = setTimeout(() => {
        if (!item.destroyed) {
          item.end();
          // end() waits for the peer's FIN; a peer that never sends one must not outlive the drain.
          setTimeout(() => item.destroy(), Math.min(1000, Math.max(10, deadline - Date.now() - 10))).unref();
        }
        if (--left === 0) resolve();
      }, first - now + Math.random() * (last - first));
      timer.unref();
    }
  });
}
