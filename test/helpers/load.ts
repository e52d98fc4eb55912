import http from 'node:http';
import { expect } from 'vitest';

export interface LoadTarget {
  host?: string;
  port?: number;
  socketPath?: string;
}

export interface LoadCounts {
  requests: number;
  ok: number;
  /** Answered with a status other than 200. */
  non200: number;
  /** ECONNREFUSED: nothing was listening. */
  refused: number;
  /** ECONNRESET / EPIPE / "socket hang up": a connection dropped under a request. */
  reset: number;
  other: number;
  /** The first few failures, for the assertion message. */
  samples: string[];
  /** Distinct response bodies seen (first line), in order of first appearance. */
  bodies: string[];
}

export interface LoadOptions {
  /** Clients that reuse one keep-alive connection each. */
  keepAlive: number;
  /** Clients that open a new connection for every request. */
  newConnection: number;
  path?: string;
  /** Hard limits so a forgotten load never runs on. @default 120 s, 1,000,000 requests */
  maxMs?: number;
  maxRequests?: number;
}

export interface Load {
  counts: LoadCounts;
  /** Resolves once every client has completed at least `n` more requests. */
  progress(n: number): Promise<void>;
  /** Stops the clients and resolves with the final counts. */
  stop(): Promise<LoadCounts>;
}

/** Runs HTTP clients against `target` on loopback until stopped, counting every outcome. */
export function startLoad(target: LoadTarget, options: LoadOptions): Load {
  const counts: LoadCounts = { requests: 0, ok: 0, non200: 0, refused: 0, reset: 0, other: 0, samples: [], bodies: [] };
  const deadline = Date.now() + (options.maxMs ?? 120_000);
  const maxRequests = options.maxRequests ?? 1_000_000;
  let stopped = false;
  const perClient: number[] = [];
  const waiters: { target: number[]; resolve: () => void }[] = [];

  const record = (client: number): void => {
    perClient[client] = (perClient[client] ?? 0) + 1;
    for (const w of [...waiters]) {
      if (w.target.every((t, i) => (perClient[i] ?? 0) >= t)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };

  const fail = (kind: 'refused' | 'reset' | 'other', detail: string): void => {
    counts[kind] += 1;
    if (counts.samples.length < 10) counts.samples.push(`${kind}: ${detail}`);
  };

  const once = (agent: http.Agent | false): Promise<void> =>
    new Promise((resolve) => {
      counts.requests += 1;
      const req = http.request(
        {
          ...(target.socketPath ? { socketPath: target.socketPath } : { host: target.host ?? '127.0.0.1', port: target.port }),
          path: options.path ?? '/',
          agent,
          headers: agent === false ? { connection: 'close' } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode === 200) counts.ok += 1;
            else {
              counts.non200 += 1;
              if (counts.samples.length < 10) counts.samples.push(`status ${res.statusCode}`);
            }
            const first = Buffer.concat(chunks).toString('utf8').split('\n')[0] ?? '';
            if (!counts.bodies.includes(first) && counts.bodies.length < 1000) counts.bodies.push(first);
            resolve();
          });
          res.on('error', (err: NodeJS.ErrnoException) => {
            fail('reset', `${err.code ?? ''} ${err.message}`);
            resolve();
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') fail('refused', err.message);
        else if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || /hang up/.test(err.message)) fail('reset', `${err.code ?? ''} ${err.message}`);
        else fail('other', `${err.code ?? ''} ${err.message}`);
        resolve();
      });
      req.end();
    });

  const clients: Promise<void>[] = [];
  const agents: http.Agent[] = [];
  const total = options.keepAlive + options.newConnection;
  for (let i = 0; i < total; i++) {
    const agent = i < options.keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
    if (agent) agents.push(agent);
    clients.push(
      (async () => {
        while (!stopped && Date.now() < deadline && counts.requests < maxRequests) {
          await once(agent);
          record(i);
        }
      })(),
    );
  }

  return {
    counts,
    progress(n) {
      const target = Array.from({ length: total }, (_, i) => (perClient[i] ?? 0) + n);
      return new Promise((resolve) => waiters.push({ target, resolve }));
    },
    async stop() {
      stopped = true;
      await Promise.all(clients);
      for (const a of agents) a.destroy();
      for (const w of waiters.splice(0)) w.resolve();
      return counts;
    },
  };
}

/** One-line summary for logs and assertion messages. */
export function describeCounts(c: LoadCounts): string {
  return `${c.requests} requests: ${c.ok} ok, ${c.non200} non-200, ${c.refused} refused, ${c.reset} reset, ${c.other} other` +
    (c.samples.length > 0 ? ` [${c.samples.join('; ')}]` : '');
}

/** Every request was answered 200: none refused, reset or failed otherwise. */
export function expectAllAnswered(c: LoadCounts): void {
  expect(c.refused, describeCounts(c)).toBe(0);
  expect(c.reset, describeCounts(c)).toBe(0);
  expect(c.other, describeCounts(c)).toBe(0);
  expect(c.non200, describeCounts(c)).toBe(0);
  expect(c.ok).toBe(c.requests);
}
