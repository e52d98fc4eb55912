// How the lean upstream client (proxy/upstream/upstream-h1-connection.ts) gets llhttp back to a message
// start after a body it cut itself: a head that starts in a read is given to the parser alone
// (headEnd), and where it cannot be (a head over two reads) the parser stops as after an upgrade
// and is initialized again. Every path, one after the other on one connection.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { framedLength, headEnd } from '../../../proxy/http/http1-parser.ts';
import { parseEndpoint } from '../../../proxy/index.ts';
import type { ClusterStats } from '../../../proxy/telemetry/proxy-stats.ts';
import { H1Pool } from '../../../proxy/upstream/upstream-h1.ts';
import { copyOf } from '../../../proxy/upstream/upstream-read.ts';

const stats = new Proxy({}, { get: () => ({ inc() {}, dec() {}, set() {}, record() {} }) }) as unknown as ClusterStats;

/** An upstream that answers the n-th request head with `answers[n]`: its pieces written 20 ms apart (separate reads). */
async function scripted(answers: (string | string[])[]): Promise<{ pool: H1Pool; connections: () => number }> {
  let connections = 0;
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    let buffered = '';
    socket.on('data', async (d) => {
      buffered += d.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
        const answer = answers[n++]!;
        for (const piece of typeof answer === 'string' ? [answer] : answer) {
          socket.write(piece, 'latin1');
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const pool = new H1Pool(parseEndpoint(`127.0.0.1:${(server.address() as net.AddressInfo).port}`), { connectTimeout: 1000, idleTimeout: 10_000 }, stats);
  cleanups.push(async () => {
    await pool.close(true);
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { pool, connections: () => connections };
}

function send(pool: H1Pool, method = 'GET'): Promise<{ status: number; body: string; headers: number }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers = 0;
    let body = '';
    pool.request(method, '/', ['host', 'x'], 2000, 2000, {
      onHead(s, _m, h) {
        status = s;
        headers = h.length / 2;
      },
      onData(chunk) {
        body += chunk.toString('latin1');
        return true;
      },
      onEnd: () => resolve({ status, body, headers }),
      onError: reject,
    });
  });
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const ok = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;

describe('headEnd', () => {
  it('finds the end of the first CRLF CRLF in [from, to) wherever it lies, as indexOf does', () => {
    const bytes = [13, 10, 13, 10, 13, 120];
    let seed = 7;
    const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let k = 0; k < 5000; k++) {
      const buf = Buffer.from(Array.from({ length: 1 + random(40) }, () => bytes[random(bytes.length)]!));
      const from = random(buf.length);
      const to = from + random(buf.length - from + 1);
      const i = buf.subarray(0, to).indexOf('\r\n\r\n', from);
      expect(headEnd(buf, from, to)).toBe(i === -1 ? -1 : i + 4);
    }
  });
});

describe('framedLength and copyOf', () => {
  it('one Content-Length of safe digits and no Transfer-Encoding is a length to cut; anything else is not', () => {
    expect(framedLength(['Date', 'd', 'CONTENT-length', '24'])).toBe(24);
    expect(framedLength(['content-length', '0'])).toBe(0);
    expect(framedLength(['content-length', '9007199254740991'])).toBe(9007199254740991);
    for (const raw of [[], ['content-length', '9007199254740993'], ['content-length', ''], ['content-length', '1x'], ['content-length', '2', 'Content-Length', '2'], ['Transfer-Encoding', 'chunked', 'content-length', '2']]) {
      expect(framedLength(raw)).toBe(-1);
    }
  });

  it('copies small and large ranges into buffers of their own', () => {
    const src = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 255));
    for (const [at, n] of [[3, 24], [0, 64], [10, 65], [1, 290]] as const) {
      const c = copyOf(src, at, n);
      expect(c.equals(src.subarray(at, at + n))).toBe(true);
      expect(c.buffer === src.buffer && c.byteOffset >= src.byteOffset && c.byteOffset < src.byteOffset + src.length).toBe(false);
    }
  });
});

describe('lean upstream client: the parser after a body it cut', () => {
  it('every kind of answer, in turn on one connection, reads as sent', async () => {
    const many = Array.from({ length: 40 }, (_, i) => `x-h${i}: ${i}\r\n`).join('');
    const { pool, connections } = await scripted([
      ok('one'),
      `HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${ok('after hints')}`,
      // The head's CRLF CRLF split over two reads, the body holding one: cut where the parser says.
      ['HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r', '\nab\r\n\r\ncd'],
      ['HTTP/1.1 200 OK\r\nContent-', 'Length: 3\r\n\r\nt', 'wo'],
      ok('three'),
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n',
      ok('four'),
      // Over 32 fields: node's parser hands them through kOnHeaders, and keeps doing so until initialized.
      ok('many', many),
      ok('five'),
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
      'HTTP/1.1 204 No Content\r\n\r\n',
      ok(''),
      ok('six'),
    ]);
    const got: [number, string][] = [];
    for (let i = 0; i < 13; i++) {
      const r = await send(pool, i === 9 ? 'HEAD' : 'GET');
      got.push([r.status, r.body]);
      if (i === 7) expect(r.headers).toBe(41);
    }
    expect(got).toEqual([
      [200, 'one'],
      [200, 'after hints'],
      [200, 'ab\r\n\r\ncd'],
      [200, 'two'],
      [200, 'three'],
      [200, '\r\n\r\n'],
      [200, 'four'],
      [200, 'many'],
      [200, 'five'],
      [200, ''],
      [204, ''],
      [200, ''],
      [200, 'six'],
    ]);
    expect(connections()).toBe(1);
  });

  it('a bad head after a cut body is the parser error it is, whole or over two reads, after either way of cutting', async () => {
    const bad = 'HTTP/1.1 200 OK\r\nBad Header\r\n\r\n';
    const cases: [string | string[], string | string[]][] = [
      [ok('x'), bad],
      [ok('x'), ['HTTP/1.1 200 OK\r\n', 'Bad Header\r\n\r\n']],
      [['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n', '\r\nx'], bad],
    ];
    for (const [first, second] of cases) {
      const { pool } = await scripted([first, second]);
      expect((await send(pool)).body).toBe('x');
      await expect(send(pool)).rejects.toMatchObject({ code: 'HPE_INVALID_HEADER_TOKEN' });
    }
  });
});
