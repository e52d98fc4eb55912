// The SDK's HTTP/2 drain with real node:http2 sessions on loopback: a stream that crosses the
// drain's GOAWAY is refused in a way the client can retry, and the application never sees it.
import dc from 'node:diagnostics_channel';
import http2 from 'node:http2';
import type net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { drainSession } from '../../../child/drain/http2-drain.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Pair {
  client: http2.ClientHttp2Session;
  server: http2.ServerHttp2Session;
  /** Streams the application's 'stream' listener got. */
  seen: number[];
  /** The first GOAWAY the client got. */
  goaway: Promise<{ code: number; lastStreamID: number }>;
}

async function pair(): Promise<Pair> {
  const seen: number[] = [];
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    seen.push(stream.id ?? 0);
    stream.respond({ ':status': 200 });
    stream.end('ok');
  });
  const sessionP = new Promise<http2.ServerHttp2Session>((resolve) => h2.once('session', resolve));
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const client = http2.connect(`http://127.0.0.1:${(h2.address() as net.AddressInfo).port}`);
  client.on('error', () => {});
  cleanups.push(() => {
    client.destroy();
    h2.close();
  });
  const goaway = new Promise<{ code: number; lastStreamID: number }>((resolve) => client.once('goaway', (code, lastStreamID) => resolve({ code, lastStreamID })));
  await new Promise((resolve) => client.once('connect', resolve));
  const server = await sessionP;
  server.on('error', () => {});
  return { client, server, seen, goaway };
}

/** Resolves with how the stream ended: its status, or its error code. */
function outcome(stream: http2.ClientHttp2Stream): Promise<string> {
  return new Promise((resolve) => {
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.resume();
    stream.on('end', () => resolve(status ? `status ${status}` : `no response, code ${stream.rstCode}`));
    stream.on('error', (err: NodeJS.ErrnoException) => resolve(err.message));
  });
}

async function answered(client: http2.ClientHttp2Session): Promise<number> {
  const stream = client.request({ ':path': '/' });
  expect(await outcome(stream)).toBe('status 200');
  return stream.id ?? 0;
}

it('a stream sent while the GOAWAY is on the wire is refused (REFUSED_STREAM): the GOAWAY names the last stream taken, not 2^31-1', async () => {
  const { client, server, seen, goaway } = await pair();
  const first = await answered(client);
  // Same tick: the server's GOAWAY and the client's HEADERS cross on the wire.
  drainSession(server);
  const crossing = client.request({ ':path': '/' });
  expect(await outcome(crossing)).toBe('Stream closed with error code NGHTTP2_REFUSED_STREAM');
  // Above the GOAWAY's last id: by RFC 9113 §6.8 not processed, safe to retry.
  expect(await goaway).toEqual({ code: 0, lastStreamID: first });
  expect(crossing.id).toBeGreaterThan(first);
  expect(seen).toEqual([first]);
  await expect.poll(() => client.closed, { timeout: 5000 }).toBe(true);
});

it('a stream nghttp2 takes after the GOAWAY was submitted but before it was written is refused before the application sees it', async () => {
  const { client, server, seen, goaway } = await pair();
  const first = await answered(client);
  // Streams Node created (nghttp2 took them), whether or not the application saw them.
  const created: number[] = [];
  const onCreated = (m: unknown): void => void created.push((m as { stream: http2.Http2Stream }).stream.id ?? 0);
  dc.subscribe('http2.server.stream.created', onCreated);
  cleanups.push(() => dc.unsubscribe('http2.server.stream.created', onCreated));
  const crossing = client.request({ ':path': '/' });
  // The client writes its HEADERS on an immediate queued before this one; the server reads
  // them in the next poll phase, while the GOAWAY submitted now is written in the check phase after it.
  await new Promise((resolve) => setImmediate(resolve));
  drainSession(server);
  expect(await outcome(crossing)).toBe('Stream closed with error code NGHTTP2_REFUSED_STREAM');
  expect(await goaway).toEqual({ code: 0, lastStreamID: first });
  // The window was hit: nghttp2 took the stream, and no listener saw it.
  expect(created).toEqual([crossing.id]);
  expect(seen).toEqual([first]);
});

it('streams open when the drain starts all finish; the session closes after the last', async () => {
  const { client, server, seen } = await pair();
  const slow: http2.ServerHttp2Stream[] = [];
  // The application's listener (on the http2 server) is replaced by one that answers later.
  server.removeAllListeners('stream');
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    seen.push(stream.id ?? 0);
    slow.push(stream);
  });
  const streams = Array.from({ length: 20 }, () => client.request({ ':path': '/' }));
  const outcomes = streams.map(outcome);
  await expect.poll(() => slow.length).toBe(20);
  drainSession(server);
  // Past the PING round trip the session is closing, and stays while its streams are open.
  await expect.poll(() => server.closed, { timeout: 5000 }).toBe(true);
  expect(server.destroyed).toBe(false);
  for (const s of slow) {
    s.respond({ ':status': 200 });
    s.end('ok');
  }
  expect(await Promise.all(outcomes)).toEqual(Array(20).fill('status 200'));
  await expect.poll(() => server.destroyed, { timeout: 5000 }).toBe(true);
});
