// The lean HTTP/1.1 upstream client (proxy/upstream/upstream-h1.ts) against raw upstreams on loopback:
// the cases undici used to handle for the proxy's bodiless requests.
import crypto from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseEndpoint } from '../../../proxy/index.ts';
import { downstreamRawHeaders, upstreamRequestHead, upstreamRequestHeaders } from '../../../proxy/http/headers.ts';
import type { ClusterStats } from '../../../proxy/telemetry/proxy-stats.ts';
import { H1Pool, requestHeadOf, type ExchangeHandler } from '../../../proxy/upstream/upstream-h1.ts';

interface Result {
  status: number;
  headers: string[];
  body: string;
  trailers: string[] | undefined;
}

function fakeStats(): ClusterStats & { counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const c = (name: string) => ({ inc: (n = 1) => void (counts[name] = (counts[name] ?? 0) + n), dec: (n = 1) => void (counts[name] = (counts[name] ?? 0) - n), set: (v: number) => void (counts[name] = v), record() {}, merge() {} });
  const names = ['rqTotal', 'rqActive', 'rqPending', 'rqPendingOverflow', 'rqTimeout', 'rqRetry', 'rqTime', 'cxTotal', 'cxActive', 'cxConnectFail', 'noHealthyUpstream', 'hcAttempt', 'hcFailure', 'hcHealthy'];
  return { ...Object.fromEntries(names.map((n) => [n, c(n)])), rqClass: [], counts } as unknown as ClusterStats & { counts: Record<string, number> };
}

/** A raw upstream: `answer(request head)` returns the bytes to write, or a function that writes them. */
async function rawUpstream(answer: (head: string, socket: net.Socket) => string | void): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const up = { port: 0, connections: 0, close: async () => {} };
  const server = net.createServer((socket) => {
    up.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const out = answer(head, socket);
        if (typeof out === 'string') socket.write(out);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as net.AddressInfo).port;
  up.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(() => r()));
  };
  return up;
}

function send(pool: H1Pool, method: string, path = '/', headers: string[] = ['host', 'x']): Promise<Result> {
  return new Promise((resolve, reject) => {
    const r: Result = { status: 0, headers: [], body: '', trailers: undefined };
    const handler: ExchangeHandler = {
      onHead(status, _m, h) {
        r.status = status;
        r.headers = h;
      },
      onData(chunk) {
        r.body += chunk.toString('latin1');
        return true;
      },
      onEnd(trailers) {
        r.trailers = trailers;
        resolve(r);
      },
      onError: reject,
    };
    pool.request(method, path, headers, 2000, 2000, handler);
  });
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function setup(answer: Parameters<typeof rawUpstream>[0]) {
  const up = await rawUpstream(answer);
  const stats = fakeStats();
  const pool = new H1Pool(parseEndpoint(`127.0.0.1:${up.port}`), { connectTimeout: 1000, idleTimeout: 10_000 }, stats);
  cleanups.push(async () => {
    await pool.close(true);
    await up.close();
  });
  return { up, pool, stats };
}

describe('lean HTTP/1.1 upstream client', () => {
  it('reuses one keep-alive connection; a HEAD answer has no body even with a Content-Length', async () => {
    const heads: string[] = [];
    const { up, pool, stats } = await setup((head) => {
      heads.push(head);
      return head.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
    });
    expect((await send(pool, 'GET')).body).toBe('hello');
    const head = await send(pool, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect((await send(pool, 'GET')).body).toBe('hello');
    expect(up.connections).toBe(1);
    expect(stats.counts.cxTotal).toBe(1);
    // The request as undici wrote it: the given headers, keep-alive; a zero length for a bodiless POST.
    expect(heads[0]).toBe('GET / HTTP/1.1\r\nhost: x\r\nconnection: keep-alive');
    await send(pool, 'POST', '/p', []);
    expect(heads[3]).toBe(`POST /p HTTP/1.1\r\nhost: 127.0.0.1:${up.port}\r\ncontent-length: 0\r\nconnection: keep-alive`);
  });

  it('skips 1xx answers, passes 40 headers and the trailers of a chunked body, ends a close-delimited body at EOF', async () => {
    const many = Array.from({ length: 40 }, (_, i) => `x-h${i}: ${i}\r\n`).join('');
    const { pool } = await setup((head, socket) => {
      if (head.includes('/hints')) return 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
      if (head.includes('/many')) return `HTTP/1.1 200 OK\r\n${many}Content-Length: 0\r\n\r\n`;
      if (head.includes('/chunked')) return 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-done\r\n\r\n3\r\nabc\r\n0\r\nx-done: yes\r\n\r\n';
      socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end');
    });
    const hints = await send(pool, 'GET', '/hints');
    expect([hints.status, hints.body]).toEqual([200, 'ok']);
    const m = await send(pool, 'GET', '/many');
    expect(m.headers.filter((_, i) => i % 2 === 0 && m.headers[i]!.startsWith('x-h'))).toHaveLength(40);
    const c = await send(pool, 'GET', '/chunked');
    expect([c.body, c.trailers]).toEqual(['abc', ['x-done', 'yes']]);
    expect((await send(pool, 'GET', '/eof')).body).toBe('until the end');
  });

  it('an idle connection the upstream closed is not used again; errors carry the codes the proxy answers by', async () => {
    let n = 0;
    const { up, pool } = await setup((_head, socket) => {
      n += 1;
      if (n === 1) {
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nKeep-Alive: timeout=5\r\n\r\na');
        return;
      }
      if (n === 3) return void socket.destroy();
      if (n === 4) return; // never answers
      return 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb';
    });
    expect((await send(pool, 'GET')).body).toBe('a');
    await new Promise((r) => setTimeout(r, 50));
    expect((await send(pool, 'GET')).body).toBe('b');
    expect(up.connections).toBe(2);
    await expect(send(pool, 'GET')).rejects.toMatchObject({ code: expect.stringMatching(/^(UND_ERR_SOCKET|ECONNRESET)$/) });
    const slow = new Promise<Result>((resolve, reject) =>
      pool.request('GET', '/', ['host', 'x'], 100, 0, { onHead() {}, onData: () => true, onEnd: () => resolve({} as Result), onError: reject }),
    );
    await expect(slow).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    const closed = await rawUpstream(() => '');
    const port = closed.port;
    await closed.close();
    const refused = new H1Pool(parseEndpoint(`127.0.0.1:${port}`), { connectTimeout: 1000, idleTimeout: 1000 }, fakeStats());
    await expect(send(refused, 'GET')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const bad = await setup(() => 'SSH-2.0-not-http\r\n\r\n');
    await expect(send(bad.pool, 'GET')).rejects.toMatchObject({ code: expect.stringMatching(/^HPE_/) });
  });
});

describe('lean HTTP/1.1 upstream client: Content-Length bodies cut from the read buffer', () => {
  /**
   * A borrowing handler: keeps every chunk as given, and says the chunks of every other read are
   * still held (as a LeanResponse whose socket did not take them whole), so those must never be
   * read into again; the ones it let go are copied at once (they may be reused).
   */
  function borrow(pool: H1Pool, path: string): Promise<{ body: Buffer; borrowed: number }> {
    return new Promise((resolve, reject) => {
      const kept: Buffer[] = [];
      let reads = 0;
      let borrowed = 0;
      let loose: Buffer[] = [];
      pool.request('GET', path, ['host', 'x'], 2000, 2000, {
        onHead() {},
        onData(chunk, isBorrowed) {
          if (isBorrowed) borrowed += 1;
          loose.push(chunk);
          return true;
        },
        readDone() {
          reads += 1;
          const hold = reads % 2 === 0;
          for (const c of loose) kept.push(hold ? c : Buffer.from(c));
          loose = [];
          return hold;
        },
        onEnd: () => {
          for (const c of loose) kept.push(Buffer.from(c));
          resolve({ body: Buffer.concat(kept), borrowed });
        },
        onError: reject,
      });
    });
  }

  it('passes large bodies as borrowed chunks, never reads into a buffer still held, and small ones in between', async () => {
    const body = (i: number): Buffer => (i % 3 === 2 ? Buffer.from(`small ${i}`) : Buffer.from(crypto.createHash('sha512').update(String(i)).digest('hex').repeat(5000).slice(0, 300_000 + i)));
    const { up, pool } = await setup((head, socket) => {
      const i = Number(/GET \/(\d+)/.exec(head)?.[1]);
      const b = body(i);
      // In pieces, so that answers span reads of every size.
      const all = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n`), b]);
      let at = 0;
      const step = (): void => {
        if (at >= all.length) return;
        const n = Math.min(all.length - at, 1000 + ((at * 7919) % 90_000));
        socket.write(all.subarray(at, (at += n)));
        setImmediate(step);
      };
      step();
    });
    let borrowed = 0;
    for (let i = 0; i < 9; i++) {
      const r = await borrow(pool, `/${i}`);
      expect(r.body.equals(body(i))).toBe(true);
      borrowed += r.borrowed;
    }
    expect(borrowed).toBeGreaterThan(0);
    expect(up.connections).toBe(1);
  });

  it('a Content-Length body cut short is an error, and bytes after an answer close the connection', async () => {
    let n = 0;
    const { up, pool } = await setup((_head, socket) => {
      n += 1;
      if (n === 1) return void socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n${'a'.repeat(5000)}`);
      if (n === 2) return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n';
      return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    });
    await expect(send(pool, 'GET')).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
    expect((await send(pool, 'GET')).body).toBe('ok');
    await new Promise((r) => setTimeout(r, 50));
    expect((await send(pool, 'GET')).body).toBe('ok');
    expect(up.connections).toBe(3);
  });
});

describe('downstreamRawHeaders', () => {
  it('keeps names as the upstream spelled them, drops hop-by-hop and Connection-listed fields, adds a request id only when none came', () => {
    const raw = ['Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 'secret', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'];
    expect(downstreamRawHeaders(raw, 'id-1')).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'x-request-id', 'id-1']);
    expect(downstreamRawHeaders(['X-Request-Id', 'theirs'], 'id-2')).toEqual(['X-Request-Id', 'theirs']);
  });

  it('a plain Connection: keep-alive drops only the hop-by-hop fields; a listed name of any length goes, in any case', () => {
    const plain = ['Date', 'd', 'CONNECTION', 'Keep-Alive', 'keep-alive', 'timeout=5', 'Content-Length', '2', 'TE', 'x', 'x-request-id', 'up'];
    expect(downstreamRawHeaders(plain, 'id-3')).toEqual(['Date', 'd', 'Content-Length', '2', 'x-request-id', 'up']);
    const listed = ['Connection', 'close, X-Nine-Ch', 'x-nine-ch', '1', 'X-Other', '2', 'Date', 'd'];
    expect(downstreamRawHeaders(listed, 'id-4')).toEqual(['X-Other', '2', 'Date', 'd', 'x-request-id', 'id-4']);
  });
});

describe('upstreamRequestHead', () => {
  it('is byte for byte the head H1Pool#request makes of upstreamRequestHeaders\' list', () => {
    const raws: string[][] = [
      ['Host', '127.0.0.1:8080'],
      ['Host', 'a.example', 'User-Agent', 'x', 'Accept', '*/*'],
      [],
      ['HOST', 'h', 'Connection', 'keep-alive', 'Keep-Alive', '5', 'TE', 'trailers', 'X-Forwarded-For', '10.0.0.1', 'x-forwarded-for', '10.0.0.2'],
      ['Host', 'h', 'Connection', 'close, X-Secret', 'x-secret', 's', 'X-Other', 'o', 'Content-Length', '0', 'X-Request-Id', 'theirs', 'X-Forwarded-Proto', 'https', 'Expect', '100-continue'],
      ['Accept', '*/*', 'content-length', '0', 'Proxy-Connection', 'x', 'Upgrade', 'h2c', 'Http2-Settings', 'y', 'Trailer', 'z', 'Transfer-Encoding', 'chunked'],
      ['Host', 'client', 'Accept', '*/*', 'Connection', 'Accept'],
    ];
    for (const raw of raws) {
      for (const method of ['GET', 'HEAD', 'POST', 'DELETE']) {
        for (const remote of [undefined, '127.0.0.1', '::ffff:10.1.1.1', '::1']) {
          for (const host of [undefined, 'authority.example']) {
            const flat = upstreamRequestHeaders(raw, { remoteAddress: remote, proto: 'https', requestId: 'rid', host });
            expect(upstreamRequestHead(method, '/p?q', raw, remote, 'https', 'rid', host, 'up:1')).toBe(requestHeadOf(method, '/p?q', flat, 'up:1'));
          }
        }
      }
    }
  });
});
