import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { expectHealthyThenStop, getApp } from './control-health.ts';

afterEach(cleanupAll);

/**
 * A bounded, seeded fuzz of the control socket: malformed and mutated HTTP requests against a
 * real supervisor. FUZZ_SEED=N replays a run (each request depends only on the seed and its
 * index, so the replay is exact whatever the scheduling); FUZZ_COUNT changes the count.
 */
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const COUNT = Number(process.env.FUZZ_COUNT ?? 10_000);
const CONCURRENCY = 24;

type Rng = () => number;

function rngOf(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rng, max: number): number => Math.floor(r() * max);

/** Endpoints whose success changes the instance (or writes files): only ever sent in a form that cannot succeed. */
const DANGEROUS = ['/reload', '/upgrade', '/stop', '/heap-snapshot', '/heap-profile'];
/** Endpoints a 2xx may legitimately come from. */
const SAFE = ['/status', '/stats', '/metrics', '/memory', '/memory/series', '/dashboard', '/memory/release'];

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'get', 'P0ST', '', 'GET GET', 'X'.repeat(300), 'PROPFIND'];
const PATHS = [
  ...SAFE,
  '/', '*', '//', '/status/', '/STATUS', '/%00', '/..%2f..%2f', '/status?filter=(', '/stats?filter=[', '/stats?filter=%E0%A4%A',
  '/metrics?filter=(a%2B)%2B%24', '/memory/series?generation=-1', '/memory/series?generation=abc', '/memory/series?generation=1e400',
  '/memory/release?generation=0', 'http://baton/status', '//[', '/status#frag', '/\u00fc', '/\x7f', '/status?' + '&'.repeat(500),
  '/memory/release?generation=999999999999999999999',
];
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'APPLICATION/JSON', '', ';;;', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'];
const JSON_BODIES = [
  '{"cold":true}', '{"cold":"yes"}', '{"cold":1}', '{"generation":1}', '{"generation":"1"}', '{"generation":1.5}', '{"generation":-3}',
  '{"generation":1e400}', '{"generation":99999999999}', '{"seconds":-1}', '{"seconds":1e308}', '{"__proto__":{"cold":true}}',
  '{"constructor":{"prototype":1}}', '[1,2]', '"cold"', 'null', '12', 'true', '{"a":', '{"cold":tru}', '{,}', '\u0000', '{"x":"\ud800"}',
  '{"generation":null}', '{"generation":[1]}', '{"generation":{"$gt":0}}', ' ', '\r\n',
];

function jsonBody(r: Rng): string {
  switch (int(r, 6)) {
    case 0: {
      const depth = 1 + int(r, 20_000);
      return '['.repeat(depth) + ']'.repeat(r() < 0.8 ? depth : int(r, depth));
    }
    case 1:
      return JSON.stringify({ x: 'a'.repeat(int(r, 70_000)) });
    case 2:
      return Buffer.from(Array.from({ length: int(r, 200) }, () => int(r, 256))).toString('latin1');
    default:
      return pick(r, JSON_BODIES);
  }
}

function chunked(r: Rng, body: string, broken: boolean): string {
  let out = '';
  let i = 0;
  while (i < body.length) {
    const n = 1 + int(r, Math.max(1, Math.min(body.length - i, 5_000)));
    const size = n.toString(16);
    out += `${r() < 0.2 ? size.toUpperCase() : size}${r() < 0.1 ? ';ext=1' : ''}\r\n${body.slice(i, i + n)}\r\n`;
    i += n;
  }
  if (broken) {
    const bad = pick(r, ['zz\r\n', '-1\r\n', 'ffffffffffffffffff\r\nxx\r\n', '5\r\nabc', '0\r\nx-trailer', '4\r\nabcdef\r\n', '']);
    return out + bad;
  }
  return out + (r() < 0.2 ? '0\r\nx-trailer: 1\r\n\r\n' : '0\r\n\r\n');
}

function mutate(r: Rng, text: string): string {
  let s = text;
  for (let k = 1 + int(r, 4); k > 0 && s.length > 0; k--) {
    const at = int(r, s.length);
    switch (int(r, 7)) {
      case 0:
        s = s.slice(0, at) + String.fromCharCode(s.charCodeAt(at) ^ (1 << int(r, 8))) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at) + String.fromCharCode(int(r, 256)) + s.slice(at);
        break;
      case 2:
        s = s.slice(0, at) + s.slice(at + int(r, 20));
        break;
      case 3:
        s = s.slice(0, at) + s.slice(at, at + int(r, 40)).repeat(2 + int(r, 3)) + s.slice(at);
        break;
      case 4:
        s = s.slice(0, at) + pick(r, ['\r\n', '\n', '\r', '\0', ' ', ':', '\r\n\r\n']) + s.slice(at);
        break;
      case 5:
        s = s.slice(0, at);
        break;
      default:
        s = s.slice(0, at) + String.fromCharCode(0x20 + int(r, 95)) + s.slice(at + 1);
    }
  }
  return s;
}

interface FuzzRequest {
  parts: string[];
  /** The client gives up mid-request (closes at once). */
  cut: boolean;
  /** Built only from forms that cannot succeed (a dangerous endpoint). */
  sealed: boolean;
}

/** Request `index` of run `seed`. */
export function fuzzRequest(seed: number, index: number): FuzzRequest {
  const r = rngOf((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const sealed = r() < 0.25;
  const method = sealed ? 'POST' : r() < 0.7 ? pick(r, ['GET', 'GET', 'POST', 'POST', 'PUT', 'HEAD']) : pick(r, METHODS);
  const target = sealed ? pick(r, DANGEROUS) + pick(r, ['', '?cold=1', '?cold=maybe', '?generation=1&seconds=1']) : pick(r, PATHS);
  const headers: string[] = [];
  if (r() < 0.9) headers.push('host: baton');
  for (let n = r() < 0.5 ? 0 : int(r, 4); n > 0; n--) {
    headers.push(pick(r, ['accept: */*', 'x-junk: ' + 'j'.repeat(int(r, 100)), 'user-agent: fuzz', 'expect: 100-continue', 'connection: keep-alive', 'upgrade: websocket', 'connection: upgrade', 'x-big: ' + 'b'.repeat(int(r, 100_000)), 'bad header: x', 'x-nul: a\0b', 'x-many: 1\r\n'.repeat(1 + int(r, 3_000)).trimEnd()]));
  }
  let body: string;
  let type: string | undefined;
  if (sealed) {
    // Every one of these is refused before a handler runs: unknown field, wrong type, not JSON, not an object, not application/json, or too big.
    const form = int(r, 6);
    body = [JSON.stringify({ bogus: int(r, 9) }), '{"cold":"yes"}', '{"cold":', '[true]', 'cold=1', JSON.stringify({ x: 'a'.repeat(70_000) })][form]!;
    type = form === 4 ? pick(r, ['text/plain', 'application/x-www-form-urlencoded']) : 'application/json';
    if (form === 1 && !target.startsWith('/reload')) body = '{"cold":true}'; // unknown field for every other endpoint
  } else {
    body = r() < 0.3 ? '' : jsonBody(r);
    type = r() < 0.8 ? pick(r, CONTENT_TYPES) : undefined;
  }
  if (type !== undefined) headers.push(`content-type: ${type}`);
  const length = Buffer.byteLength(body, 'latin1');
  const framing = sealed ? pick(r, ['cl', 'cl', 'chunked']) : pick(r, ['cl', 'cl', 'cl', 'chunked', 'chunked', 'chunked-bad', 'cl-short', 'cl-long', 'cl-bad', 'cut', 'none', 'both']);
  let payload = body;
  if (framing === 'cl' || framing === 'cut') headers.push(`content-length: ${length}`);
  else if (framing === 'cl-short') headers.push(`content-length: ${int(r, length + 1)}`);
  else if (framing === 'cl-long') headers.push(`content-length: ${length + 1 + int(r, 100)}`);
  else if (framing === 'cl-bad') headers.push(`content-length: ${pick(r, ['abc', '-1', '1e3', '99999999999999999999', `${length}, ${length + 1}`, '0x10', ' '])}`);
  else if (framing === 'chunked' || framing === 'chunked-bad') {
    headers.push(`transfer-encoding: ${pick(r, ['chunked', 'chunked', 'gzip, chunked', 'Chunked'])}`);
    payload = chunked(r, body, framing === 'chunked-bad');
  } else if (framing === 'both') {
    headers.push(`content-length: ${length}`, 'transfer-encoding: chunked');
  }
  let text = `${method} ${target} ${r() < 0.85 ? 'HTTP/1.1' : pick(r, ['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', ''])}\r\n${headers.join('\r\n')}\r\n\r\n${payload}`;
  if (!sealed) {
    if (r() < 0.25) text = mutate(r, text);
    text = defuse(text);
  }
  const cut = framing === 'cut' || (!sealed && r() < 0.05);
  if (cut) text = text.slice(0, 1 + int(r, text.length));
  const parts: string[] = [];
  for (let rest = text, n = 1 + int(r, 3); rest.length > 0; n--) {
    const at = n <= 1 ? rest.length : 1 + int(r, rest.length);
    parts.push(rest.slice(0, at));
    rest = rest.slice(at);
  }
  return { parts, cut, sealed };
}

/** A mutated request that might reach a dangerous endpoint in a valid form is made to miss it (Node's parser only knows upper-case POST). */
function defuse(text: string): string {
  if (!text.includes('POST')) return text;
  return text.replace(/stop|reload|upgrade|heap/gi, (w) => `${w}0`);
}

interface Outcome {
  status: number | null;
  closed: boolean;
}

function send(socketPath: string, request: FuzzRequest): Promise<Outcome> {
  return new Promise((resolve) => {
    let data = '';
    let settled = false;
    let idle: NodeJS.Timeout | undefined;
    let giveUp: NodeJS.Timeout | undefined;
    const socket = net.connect(socketPath);
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ status: statusOf(data), closed });
    };
    // Silence means the server waits for more: half-close, as a client that has nothing more to send.
    const quiet = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        if (!socket.destroyed) socket.end();
        giveUp ??= setTimeout(() => finish(false), 3_000);
      }, 300);
    };
    socket.on('connect', async () => {
      for (const part of request.parts) {
        if (socket.destroyed) break;
        socket.write(Buffer.from(part, 'latin1'));
        await new Promise((r) => setImmediate(r));
      }
      if (request.cut) finish(true);
      else quiet();
    });
    socket.on('data', (c: Buffer) => {
      data += c.toString('latin1');
      quiet();
    });
    socket.on('error', () => {});
    socket.on('close', () => finish(true));
  });
}

/** The status of the final answer (past any 100 Continue), or null when nothing was answered. */
function statusOf(data: string): number | null {
  let rest = data;
  for (;;) {
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(rest);
    if (!m) return rest.length === 0 ? null : -1;
    const status = Number(m[1]);
    if (status >= 200 || status === 101) return status;
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return null;
    rest = rest.slice(end + 4);
  }
}

describe('control socket fuzz', () => {
  it(`answers ${COUNT} malformed and mutated requests with a 4xx, a legitimate 2xx or a close, and keeps serving (FUZZ_SEED=${SEED})`, async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const port = await baton.port();
    const tally = new Map<string, number>();
    const failures: string[] = [];
    let next = 0;
    const started = performance.now();
    let probing = true;
    const probes = (async () => {
      while (probing) {
        const t0 = performance.now();
        const status = await controlRequest(baton.socketPath, 'GET', '/status', 2_000).catch((err: Error) => ({ status: 0, body: err.message }));
        const ms = performance.now() - t0;
        if (status.status !== 200 || ms > 2_000) failures.push(`status probe: ${status.status} after ${Math.round(ms)} ms`);
        const app = await getApp(port).catch((err: Error) => err.message);
        if (!app.includes('generation 1 ')) failures.push(`generation probe: ${app}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < COUNT && failures.length < 20) {
          const index = next++;
          const request = fuzzRequest(SEED, index);
          const outcome = await send(baton.socketPath, request);
          const key = outcome.status === null ? (outcome.closed ? 'closed' : 'stalled') : String(outcome.status);
          tally.set(key, (tally.get(key) ?? 0) + 1);
          const line = request.parts.join('').split('\r\n')[0] ?? '';
          const safe2xx = !request.sealed && SAFE.some((p) => line.includes(p));
          const ok =
            (outcome.status === null && outcome.closed) ||
            (outcome.status !== null && outcome.status >= 400 && outcome.status < 500) ||
            (outcome.status !== null && outcome.status >= 200 && outcome.status < 300 && safe2xx);
          if (!ok) failures.push(`request ${index} (FUZZ_SEED=${SEED}): ${key}: ${JSON.stringify(request.parts.join('').slice(0, 300))}`);
        }
      }),
    );
    probing = false;
    await probes;
    const seconds = (performance.now() - started) / 1000;
    console.log(`control fuzz, FUZZ_SEED=${SEED}: ${COUNT} requests in ${seconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
    expect(failures, `FUZZ_SEED=${SEED}`).toEqual([]);
    const status = (await baton.status()) as { pid: number; active: number; generations: unknown[] };
    // Nothing the fuzz sent reloaded, upgraded or stopped the instance.
    expect({ pid: status.pid, active: status.active, generations: status.generations.length }, `FUZZ_SEED=${SEED}`).toEqual({ pid: baton.pid, active: 1, generations: 1 });
    await expectHealthyThenStop(baton, port, 1);
  }, 120_000);
});
