// proxy/http/deadline.ts (a connection's timeout as a deadline number, one lazily re-armed timer) on
// real timers, and the lean upstream client's headers and body timeouts built on it, against a
// raw upstream on loopback.
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { Deadline } from '../../../proxy/http/deadline.ts';
import { installLeanPath } from '../../../proxy/http/downstream-h1.ts';
import { parseEndpoint } from '../../../proxy/index.ts';
import type { ClusterStats } from '../../../proxy/telemetry/proxy-stats.ts';
import { H1Pool } from '../../../proxy/upstream/upstream-h1.ts';

/** Resolves with the ms from now until `deadline`'s callback ran (set up by `arm`). */
function expiry(arm: (d: Deadline) => void): Promise<number> {
  const start = performance.now();
  return new Promise((resolve) => {
    const d = new Deadline(() => resolve(performance.now() - start));
    arm(d);
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('Deadline', () => {
  it('passes no earlier than set, and a later set moves it without re-arming early', async () => {
    expect(await expiry((d) => d.set(150))).toBeGreaterThanOrEqual(150);
    // Set again 100 ms in (the timer still armed for 150): it now passes at 100 + 150.
    const moved = await expiry((d) => {
      d.set(150);
      setTimeout(() => d.set(150), 100);
    });
    expect(moved).toBeGreaterThanOrEqual(250);
  });

  it('an earlier deadline re-arms the timer: 100 ms after a 10 s one passes at about 100 ms', async () => {
    const ms = await expiry((d) => {
      d.set(10_000);
      d.set(100);
    });
    expect(ms).toBeGreaterThanOrEqual(100);
    expect(ms).toBeLessThan(5_000);
  });

  it('setFrom counts from the reading it is given: 200 ms from one taken 120 ms ago passes 80 ms on, not before', async () => {
    const then = performance.now();
    await new Promise((r) => setTimeout(r, 120));
    const ms = await expiry((d) => d.setFrom(then, 200));
    expect(performance.now() - then).toBeGreaterThanOrEqual(200);
    expect(ms).toBeLessThan(180);
  });

  it('set(0) and clear() leave no deadline: neither fires before a later one that does', async () => {
    const fired: string[] = [];
    const off = new Deadline(() => fired.push('off'));
    const cleared = new Deadline(() => fired.push('cleared'));
    off.set(50);
    off.set(0);
    cleared.set(50);
    cleared.clear();
    await expiry((d) => d.set(300));
    expect(fired).toEqual([]);
  });
});

function stats(): ClusterStats {
  const c = { inc() {}, dec() {}, set() {}, record() {}, merge() {} };
  return new Proxy({}, { get: (_t, name) => (name === 'rqClass' ? [] : c) }) as unknown as ClusterStats;
}

/** A raw upstream that calls `answer` with each connection's socket once a request head has come. */
async function upstream(answer: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let seen = '';
    socket.on('data', (d) => {
      seen += d.toString('latin1');
      if (seen.includes('\r\n\r\n')) {
        seen = '';
        answer(socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** One GET through a new pool; resolves with the error code and the ms from the request to it, and the body bytes seen. */
function failure(port: number, headersTimeout: number, bodyTimeout: number): Promise<{ code: string | undefined; ms: number; body: string }> {
  const pool = new H1Pool(parseEndpoint(`127.0.0.1:${port}`), { connectTimeout: 1000, idleTimeout: 10_000 }, stats());
  cleanups.push(() => pool.close(true));
  const start = performance.now();
  let body = '';
  return new Promise((resolve, reject) => {
    pool.request('GET', '/', ['host', 'x'], headersTimeout, bodyTimeout, {
      onHead() {},
      onData(chunk) {
        body += chunk.toString('latin1');
        return true;
      },
      onEnd: () => reject(new Error('the answer ended')),
      onError: (err) => resolve({ code: err.code, ms: performance.now() - start, body }),
    });
  });
}

describe('lean upstream client timeouts', () => {
  it('headers: UND_ERR_HEADERS_TIMEOUT from the request on, even while the head trickles in', async () => {
    const port = await upstream((socket) => {
      socket.write('HTTP/1.1 200 OK\r\n');
      const t = setInterval(() => socket.writable && socket.write('x-more: 1\r\n'), 100);
      socket.once('close', () => clearInterval(t));
    });
    const r = await failure(port, 400, 10_000);
    expect(r.code).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(r.ms).toBeGreaterThanOrEqual(400);
    expect(r.ms).toBeLessThan(3_000);
  });

  it('body: UND_ERR_BODY_TIMEOUT once the body is silent that long; each chunk starts it again', async () => {
    let lastChunk = 0;
    const port = await upstream((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\na');
      let sent = 1;
      const t = setInterval(() => {
        // Three more bytes 150 ms apart (each gap under the 400 ms timeout), then silence.
        if (sent === 4 || !socket.writable) return clearInterval(t);
        socket.write('b');
        sent += 1;
        lastChunk = performance.now();
      }, 150);
      socket.once('close', () => clearInterval(t));
    });
    const start = performance.now();
    const r = await failure(port, 2_000, 400);
    expect(r.code).toBe('UND_ERR_BODY_TIMEOUT');
    expect(r.body).toBe('abbb');
    // Not before 400 ms after the last byte (which came ~450 ms in), so well past 400 ms after the head.
    expect(performance.now() - lastChunk).toBeGreaterThanOrEqual(399);
    expect(r.ms).toBeGreaterThanOrEqual(800);
    expect(performance.now() - start).toBeLessThan(5_000);
  });
});

describe('lean downstream stream idle', () => {
  /**
   * A lean-path server whose one answer is 256 MiB, written as fast as the client takes it; stream
   * idle 400 ms. `closed` resolves when the server's side of a connection closes (a paused client
   * would not see the FIN behind the bytes it has not read).
   */
  async function bigAnswers(): Promise<{ port: number; closed: Promise<void> }> {
    const server = http.createServer();
    expect(installLeanPath(server, { headersTimeout: 5_000, keepAliveTimeout: 5_000, streamIdleTimeout: 400, maxHeaderSize: 16_384 })).toBe(true);
    const closed = new Promise<void>((resolve) => server.on('connection', (socket: net.Socket) => socket.once('close', () => resolve())));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      let left = 4096;
      res.writeHead(200, { 'content-length': left * chunk.length });
      const more = (): void => {
        while (left > 0) {
          left -= 1;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    });
    return { port: (server.address() as net.AddressInfo).port, closed };
  }

  function get(port: number): Promise<net.Socket> {
    return new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        resolve(s);
      });
      s.on('error', () => {});
    });
  }

  it('cuts a response the client stopped reading, not before the stream idle timeout', async () => {
    const { port, closed } = await bigAnswers();
    const s = await get(port);
    s.pause();
    const start = performance.now();
    await closed;
    expect(performance.now() - start).toBeGreaterThanOrEqual(400);
    expect(performance.now() - start).toBeLessThan(5_000);
  });

  it('keeps a response the client reads in bursts 150 ms apart (each gap under the timeout)', async () => {
    const server = await bigAnswers();
    const s = await get(server.port);
    s.pause();
    let closed = false;
    void server.closed.then(() => (closed = true));
    let got = 0;
    s.on('data', (c: Buffer) => (got += c.length));
    s.pause();
    // 2 s of 150 ms pauses, each followed by 20 ms of reading: the answer (256 MiB) is far from done when the test stops.
    for (let i = 0; i < 13 && !closed; i++) {
      await new Promise((r) => setTimeout(r, 150));
      s.resume();
      await new Promise((r) => setTimeout(r, 20));
      s.pause();
    }
    expect(closed).toBe(false);
    expect(got).toBeGreaterThan(0);
    s.destroy();
  });
});
