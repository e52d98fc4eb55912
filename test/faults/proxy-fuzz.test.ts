// A bounded, seeded fuzz of the proxy's downstream HTTP/1.1 parsing: mutated raw requests over
// real TCP to a real proxy process (under Baton) in front of a real upstream. Every answer must
// be a 4xx, a 1xx/2xx for a request that stayed valid, or a closed connection; never a 5xx, never
// bytes that are not HTTP, never a connection left hanging; and the proxy process stays up.
// FUZZ_SEED=<n> replays a run (the seed is printed in every failure); FUZZ_CASES sets the count.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatonProcess } from '../helpers/baton.ts';
import { addresses, request, startProxyBaton } from '../proxy/harness.ts';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const CASES = Number(process.env.FUZZ_CASES ?? 10_000);
const CONCURRENCY = 64;
/** After the request is written: this long without a byte ends the wait for more of the answer. */
const QUIET_MS = 150;
/** After the half-close that follows a quiet request: the proxy must close within this. */
const CLOSE_DEADLINE_MS = 3_000;

/** mulberry32: small, fast, and the same sequence for the same seed on every Node. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASES = [
  'GET / HTTP/1.1\r\nHost: fuzz.example\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n',
  'GET /direct?q=1 HTTP/1.1\r\nHost: fuzz.example\r\nConnection: close\r\n\r\n',
  'POST /upload HTTP/1.1\r\nHost: fuzz.example\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world',
  'POST /chunked HTTP/1.1\r\nHost: fuzz.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
  'GET http://fuzz.example:8080/absolute?x=y HTTP/1.1\r\nHost: other.example\r\n\r\n',
  'HEAD /healthz HTTP/1.1\r\nHost: fuzz.example\r\nConnection: keep-alive\r\n\r\n',
  'GET /old HTTP/1.0\r\n\r\n',
  'PUT /a/b%20c HTTP/1.1\r\nHost: fuzz.example\r\nX-Forwarded-For: 10.0.0.1\r\nX-Request-Id: abc\r\nContent-Length: 3\r\n\r\nabc',
  'GET /ws HTTP/1.1\r\nHost: fuzz.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'GET /one HTTP/1.1\r\nHost: fuzz.example\r\n\r\nGET /two HTTP/1.1\r\nHost: fuzz.example\r\nConnection: close\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: fuzz.example\r\n\r\n',
  'POST /expect HTTP/1.1\r\nHost: fuzz.example\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody',
];

const NASTY_HEADERS = [
  'Transfer-Encoding: chunked', 'Content-Length: 5', 'Content-Length: 0', 'Content-Length: -1', 'Content-Length: 18446744073709551616',
  'Content-Length: 1, 2', 'Transfer-Encoding: gzip, chunked', 'Transfer-Encoding: chunked, identity', 'Host:', 'Host: a.example',
  'Host: a b', 'Host: [::1]:80', 'Host: x@y', 'Connection: close, Host', 'Connection: x-remove\r\nX-Remove: 1', 'Expect: nothing',
  'Upgrade: h2c', 'TE: trailers', ' folded continuation', 'Bad Name: v', ':colon: v', 'X-Nul: a\x00b', 'X-Ctl: \x01\x7f', 'X-High: \xe9\xff',
  `X-Big: ${'b'.repeat(20_000)}`, 'Proxy-Connection: keep-alive', 'Keep-Alive: timeout=1', 'X-Request-Id: \x7f\x80', 'Cookie: a=b; c=d',
];
const NUMBERS = ['0', '-1', '1', '00000000000000000005', '99999999999999999999', 'ff', '0x5', '+5', '5 5', '', ' 5', '5\t', '1e3'];
const METHODS = ['GET', 'POST', 'CONNECT', 'TRACE', 'PATCH', 'get', 'G\x00T', 'GET GET', '', 'PRI', 'M-SEARCH', 'X'.repeat(300)];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1x', 'http/1.1', 'HTTP/11', 'HTTP/1.', ''];
const BYTES = [0x0d, 0x0a, 0x00, 0x20, 0x09, 0x3a, 0x7f, 0xff, 0x80, 0x25, 0x2f, 0x3f, 0x23, 0x40, 0x3b, 0x22, 0x5c];

/** One mutated request: 1-4 mutations of a base request, as latin1 (one char per byte). */
function mutate(rand: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  let s = pick(BASES);
  const n = 1 + Math.floor(rand() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rand() * (s.length + 1));
    const lines = s.split('\r\n');
    const line = Math.floor(rand() * lines.length);
    switch (Math.floor(rand() * 12)) {
      case 0: s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(at + 1); break;
      case 1: s = s.slice(0, at) + String.fromCharCode(pick(BYTES)) + s.slice(at); break;
      case 2: s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 8)); break;
      case 3: s = s.slice(0, at); break;
      case 4: lines.splice(line, 0, lines[line]!); s = lines.join('\r\n'); break;
      case 5: lines.splice(line, 1); s = lines.join('\r\n'); break;
      case 6: lines.splice(1 + Math.floor(rand() * Math.max(1, lines.length - 1)), 0, pick(NASTY_HEADERS)); s = lines.join('\r\n'); break;
      case 7: s = s.replace(/\d+/, () => pick(NUMBERS)); break;
      case 8: s = s.replace(/^[^ ]*/, pick(METHODS)); break;
      case 9: s = s.replace(/HTTP\/1\.[01]/, pick(VERSIONS)); break;
      case 10: s = rand() < 0.5 ? s.replace(/\r\n/g, '\n') : s.replace('\r\n', pick(['\n', '\r', '\r\r\n', ' \r\n'])); break;
      default: s = s + pick(BASES).slice(0, Math.floor(rand() * 80));
    }
  }
  return s;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
// RFC 9112 §3: a recipient MAY split the request line on runs of whitespace (Node's parser does);
// RFC 3986 §3.1: the scheme is case-insensitive.
const REQUEST_LINE = new RegExp(`^${TOKEN} +(?:/[\\x21-\\x7e]*|[Hh][Tt][Tt][Pp][Ss]?://[\\x21-\\x7e]+|\\*) +HTTP/1\\.([01])$`);
const FIELD = new RegExp(`^${TOKEN}:[\\t\\x20-\\x7e\\x80-\\xff]*$`);

/** Whether the first request of `raw` has a head a strict HTTP/1.1 server accepts (what a 2xx answer is judged against). */
function validHead(sent: string): boolean {
  // RFC 9112 §2.2: empty lines before a request line are skipped (Node's parser skips lone CR and LF too).
  const raw = sent.replace(/^[\r\n]+/, '');
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const [first, ...fields] = raw.slice(0, end).split('\r\n');
  const m = REQUEST_LINE.exec(first!);
  if (!m) return false;
  if (!fields.every((f) => FIELD.test(f))) return false;
  const hosts = fields.filter((f) => /^host:/i.test(f)).length;
  return m[1] === '0' ? hosts <= 1 : hosts === 1;
}

interface Exchange {
  answer: string;
  /** How the exchange ended. */
  end: 'closed' | 'quiet' | 'hung';
  /** The client had half-closed (EOF) before the proxy closed. */
  halfClosed: boolean;
}

/** Writes `raw`; waits until the proxy closes, or QUIET_MS pass without a byte (then, if nothing came, half-closes and waits for the close). */
function exchange(port: number, raw: string): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let halfClosed = false;
    let done = false;
    const finish = (end: Exchange['end']): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer: Buffer.concat(chunks).toString('latin1'), end, halfClosed });
    };
    const quiet = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (chunks.length > 0) return finish('quiet');
        // Nothing came: the proxy waits for more of the request. EOF must make it answer or close.
        halfClosed = true;
        socket.end();
        timer = setTimeout(() => finish('hung'), CLOSE_DEADLINE_MS);
      }, QUIET_MS);
    };
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      socket.write(Buffer.from(raw, 'latin1'));
      quiet();
    });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (!halfClosed) quiet();
    });
    // The proxy's FIN: it has said all it will (the client side stays open, allowHalfOpen).
    socket.on('end', () => finish('closed'));
    socket.on('error', () => finish('closed'));
    socket.on('close', () => finish('closed'));
  });
}

/** Why this answer breaks the rules, or undefined. */
function judge(raw: string, { answer, end, halfClosed }: Exchange): string | undefined {
  if (end === 'hung') return `the connection was still open ${CLOSE_DEADLINE_MS} ms after the client half-closed`;
  // A request with a valid head is answered unless the client's EOF came first (Node then drops
  // the request, as other proxies reset the stream) or it asked for CONNECT (refused with 405).
  if (answer === '' && !halfClosed && validHead(raw)) return 'a request with a valid head got no answer';
  if (answer === '') return undefined;
  if (!answer.startsWith('HTTP/1.1 ')) return 'the answer is not an HTTP/1.1 response';
  const statuses = [...answer.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  const server = statuses.find((s) => s >= 500);
  if (server !== undefined) return `answered ${server}`;
  const first = statuses.find((s) => s >= 200);
  if (first !== undefined && first < 400 && !validHead(raw)) return `answered ${first} to a request whose head is not valid HTTP/1.1`;
  return undefined;
}

let baton: BatonProcess;
let upstream: http.Server;
let web: number;

beforeAll(async () => {
  // The upstream reads each body whole and answers 200: any 5xx the client sees is the proxy's.
  upstream = http.createServer((req, res) => {
    req.on('error', () => {});
    req.resume();
    req.on('end', () => res.end('upstream\n'));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const l = await addresses('web');
  web = l.web!.port;
  baton = startProxyBaton({
    listeners: [{ name: 'web', address: l.web!.address }],
    app: {
      listeners: {
        web: {
          protocol: 'http',
          health_path: '/healthz',
          headers_timeout: '2s',
          request_timeout: '3s',
          idle_timeout: '2s',
          routes: [
            { match: { prefix: '/direct' }, direct_response: { status: 200, body: 'direct\n' } },
            { match: { prefix: '/' }, cluster: 'up' },
          ],
        },
      },
      clusters: { up: { endpoints: [`127.0.0.1:${(upstream.address() as net.AddressInfo).port}`] } },
      access_log: { enabled: false },
    },
  });
  await baton.active(1);
}, 40_000);

afterAll(async () => {
  await baton?.cleanup();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
});

describe('proxy fuzz: malformed and mutated requests', () => {
  it(`${CASES} mutated requests over real TCP: a 4xx, a 2xx for a valid request, or a close; never a 5xx or a hang; the proxy stays up (seed ${SEED})`, async () => {
    const before = (await baton.status()).generations.find((g) => g.state === 'active');
    expect(before).toBeDefined();
    const rand = prng(SEED);
    const cases = Array.from({ length: CASES }, () => mutate(rand));
    const failures: string[] = [];
    const tally = { answered: 0, closed: 0, ok: 0, client: 0 };
    const started = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length && failures.length < 10) {
        const index = next++;
        const raw = cases[index]!;
        const result = await exchange(web, raw);
        const why = judge(raw, result);
        if (why) failures.push(`seed ${SEED} case ${index}: ${why}\n  sent: ${JSON.stringify(raw.slice(0, 400))}\n  got:  ${JSON.stringify(result.answer.slice(0, 300))}`);
        if (result.answer === '') tally.closed += 1;
        else {
          tally.answered += 1;
          if (/^HTTP\/1\.1 [123]/.test(result.answer)) tally.ok += 1;
          else tally.client += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (performance.now() - started) / 1000;
    console.log(`proxy fuzz: seed ${SEED}, ${next} cases in ${seconds.toFixed(1)} s: ${tally.ok} answered 1xx-3xx, ${tally.client} answered 4xx, ${tally.closed} closed without an answer`);
    expect(failures, failures.join('\n')).toEqual([]);
    // Both kinds of answer occurred: the run exercised the parser's refusals and real forwarding.
    expect(tally.ok).toBeGreaterThan(CASES / 50);
    expect(tally.client).toBeGreaterThan(CASES / 10);

    const after = (await baton.status()).generations.find((g) => g.state === 'active');
    expect(after?.pid, `seed ${SEED}: the proxy process changed`).toBe(before!.pid);
    expect(baton.events.filter((e) => e.type === 'worker-state' && e.to === 'exited'), `seed ${SEED}`).toEqual([]);
    expect((await request(web, { path: '/' })).body.toString()).toBe('upstream\n');
  }, 90_000);
});
