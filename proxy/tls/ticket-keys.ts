/**
 * Keeps the session ticket key of this generation's TLS servers equal to the one the supervisor
 * shares with every generation, so a client resumes its session after a reload. Node takes one
 * key at a time: tickets issued before a rotation are refused after it (a full handshake, once).
 */
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { ticketKey } from '../../child/index.ts';

export interface TicketKeeper {
  /** Installs the current key on `server` now and on every rotation. */
  add(server: tls.Server): void;
  stop(): void;
}

/** Fetches the shared key (resolves once it is known, or once this generation fell back to its own). */
export async function shareTicketKeys(rotateEvery: number, log: Logger): Promise<TicketKeeper> {
  const servers = new Set<tls.Server>();
  let key: Buffer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const refresh = async (): Promise<void> => {
    let expiresAt: number;
    try {
      ({ key, expiresAt } = await ticketKey(rotateEvery));
    } catch (err) {
      // An older supervisor: sessions resume within this generation only.
      log.warn({ err: (err as Error).message }, 'no shared TLS session ticket key from the supervisor: this generation uses its own');
      return;
    }
    for (const s of servers) s.setTicketKeys(key);
    if (stopped) return;
    timer = setTimeout(() => void refresh(), Math.max(1000, expiresAt - Date.now()));
    timer.unref();
  };
  await refresh();
  return {
    add(server) {
      servers.add(server);
      if (key) server.setTicketKeys(key);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
