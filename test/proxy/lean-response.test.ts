// LeanResponse's own 'close' listeners (proxy/lean-response.ts): once('close') is kept out of
// EventEmitter, and must still behave as on node:http's ServerResponse — order, removal, counts.
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { installLeanPath } from '../../proxy/downstream-h1.ts';
import { LeanResponse } from '../../proxy/lean-response.ts';

let server: http.Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A server on the lean path whose handler is `handler`; resolves with the raw bytes of one GET's answer. */
async function oneGet(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<string> {
  server = http.createServer();
  expect(installLeanPath(server, { headersTimeout: 5000, keepAliveTimeout: 5000, streamIdleTimeout: 5000, maxHeaderSize: 16384 })).toBe(true);
  server.on('request', handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  let raw = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (raw += d));
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await new Promise((resolve) => socket.on('close', resolve));
  return raw;
}

describe('LeanResponse listeners', () => {
  it("once('close') listeners run once, in the order they came with on('close') ones; a removed one does not run; counts include them", async () => {
    const calls: string[] = [];
    let counted = -1;
    let listed = -1;
    let closed: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    const raw = await oneGet((_req, res) => {
      expect(res).toBeInstanceOf(LeanResponse);
      const a = (): void => void calls.push('a');
      const b = (): void => void calls.push('b');
      res.once('close', a);
      res.once('close', b);
      res.on('close', () => calls.push('on'));
      res.once('close', function (this: unknown) {
        calls.push(this === res ? 'this' : 'not this');
        closed();
      });
      res.off('close', b);
      res.once('close', () => calls.push('last'));
      counted = res.listenerCount('close');
      listed = res.listeners('close').length;
      res.end('ok');
    });
    await done;
    await new Promise((resolve) => setImmediate(resolve));
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/);
    expect(counted).toBe(4);
    expect(listed).toBe(4);
    expect(calls).toEqual(['a', 'on', 'this', 'last']);
  });

  it("once('close') alone (the hot path: kept out of EventEmitter): each runs once, on the response, in order; off() removes one", async () => {
    const calls: string[] = [];
    let counted = -1;
    let closed: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    await oneGet((_req, res) => {
      const b = (): void => void calls.push('b');
      res.once('close', function (this: unknown) {
        calls.push(this === res ? 'a on res' : 'a elsewhere');
      });
      res.once('close', b);
      res.once('close', () => {
        calls.push('c');
        closed();
      });
      res.removeListener('close', b);
      counted = res.listenerCount('close');
      res.end();
    });
    await done;
    await new Promise((resolve) => setImmediate(resolve));
    expect(counted).toBe(2);
    expect(calls).toEqual(['a on res', 'c']);
  });
});
