// LeanResponse's own 'close' listeners (proxy/http/lean-response.ts): once('close') is kept out of
// EventEmitter, and must still behave as on node:http's ServerResponse — order, removal, counts.
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { installLeanPath } from '../../../proxy/http/downstream-h1.ts';
import { LeanResponse } from '../../../proxy/http/lean-response.ts';

let server: http.Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A server on the lean path whose handler is `handler`, and a client connected to it. */
async function leanServer(handler: Handler): Promise<net.Socket> {
  server = http.createServer();
  expect(installLeanPath(server, { headersTimeout: 5000, keepAliveTimeout: 5000, streamIdleTimeout: 5000, maxHeaderSize: 16384 })).toBe(true);
  server.on('request', handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return net.connect(port, '127.0.0.1');
}

/** A server on the lean path whose handler is `handler`; resolves with the raw bytes of one GET's answer. */
async function oneGet(handler: Handler): Promise<string> {
  const socket = await leanServer(handler);
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

/** A lean-path server whose handler is `handler`, and a client connected to it that has sent one GET (and reads only when told). */
async function serveOne(handler: Handler): Promise<net.Socket> {
  const socket = await leanServer(handler);
  socket.pause();
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  return socket;
}

// 'finish' means every byte reached the kernel, as node:http's does: without a write callback when
// the socket took them at once, after the socket's queue drains when it did not, and never when
// the client went away first (http-forward.ts counts a response as answered by writableFinished).
describe("LeanResponse 'finish'", () => {
  it("a small answer: 'finish', then 'close' with writableFinished, each once", async () => {
    const events: string[] = [];
    const closed = new Promise<void>((resolve) => {
      void serveOne((_req, res) => {
        expect(res).toBeInstanceOf(LeanResponse);
        res.on('finish', () => events.push(`finish ${res.writableFinished}`));
        res.once('close', () => {
          events.push(`close ${res.writableFinished}`);
          resolve();
        });
        res.end('hello');
        events.push(`ended ${res.writableFinished}`);
      }).then((client) => {
        client.resume();
        closed.then(() => client.destroy(), () => client.destroy());
      });
    });
    await closed;
    expect(events).toEqual(['ended false', 'finish true', 'close true']);
  });

  it("an answer the client does not read yet: 'finish' once the socket's queue is empty, then 'close'", async () => {
    const big = Buffer.alloc(32 * 1024 * 1024, 'x');
    let client!: net.Socket;
    let queuedAtEnd = -1;
    let queuedAtFinish = -1;
    let received = 0;
    const closed = new Promise<boolean>((resolve) => {
      void serveOne((req, res) => {
        res.on('finish', () => (queuedAtFinish = req.socket.writableLength));
        res.once('close', () => resolve(res.writableFinished));
        res.end(big);
        queuedAtEnd = req.socket.writableLength;
        // Only now does the client read: the kernel's buffers were full, the rest waits in the socket.
        client.on('data', (d: Buffer) => (received += d.length));
        client.resume();
      }).then((c) => (client = c));
    });
    expect(await closed).toBe(true);
    client.destroy();
    expect(queuedAtEnd).toBeGreaterThan(0);
    expect(queuedAtFinish).toBe(0);
    expect(received).toBeGreaterThan(0);
  });

  it("a client gone before its answer reached the kernel: 'close' without 'finish'", async () => {
    const big = Buffer.alloc(32 * 1024 * 1024, 'x');
    let finished = false;
    let client!: net.Socket;
    const closed = new Promise<boolean>((resolve) => {
      void serveOne((req, res) => {
        res.on('finish', () => (finished = true));
        res.once('close', () => resolve(res.writableFinished));
        res.end(big);
        expect(req.socket.writableLength).toBeGreaterThan(0);
        client.destroy();
      }).then((c) => (client = c));
    });
    expect(await closed).toBe(false);
    expect(finished).toBe(false);
  });
});
