// proxy/http/socket-read-buffer.ts on accepted loopback sockets: reads into the caller's buffer, a
// callback's false stops reading until resume(), readIntoStream gives 'data' events back, EOF ends.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readInto, readIntoAvailable, readIntoStream } from '../../../proxy/http/socket-read-buffer.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A server whose first connection is handed to `accept`, and a client connected to it. */
async function pair(accept: (socket: net.Socket) => void): Promise<net.Socket> {
  const server = net.createServer(accept);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  cleanups.push(() => {
    client.destroy();
    server.close();
  });
  return client;
}

describe('readInto', () => {
  it('is available on this Node', () => {
    expect(readIntoAvailable).toBe(true);
  });

  it("reads into the caller's buffer; false pauses until resume(); readIntoStream brings 'data' back; EOF ends", async () => {
    const buffer = Buffer.alloc(4096);
    const seen: string[] = [];
    let accepted!: net.Socket;
    let first!: () => void;
    const gotFirst = new Promise<void>((r) => (first = r));
    const client = await pair((socket) => {
      accepted = socket;
      expect(
        readInto(socket, buffer, (n, buf) => {
          expect(buf).toBe(buffer);
          seen.push(buf.subarray(0, n).toString());
          first();
          return false;
        }),
      ).toBe(true);
    });
    client.write('one');
    await gotFirst;
    expect(seen).toEqual(['one']);
    // Not reading now: what the client sends waits in the kernel until resume().
    readIntoStream(accepted);
    const data = new Promise<string>((r) => accepted.once('data', (d: Buffer) => r(d.toString())));
    client.write('two');
    accepted.resume();
    expect(await data).toBe('two');
    expect(seen).toEqual(['one']);
    const ended = new Promise((r) => accepted.once('end', r));
    client.end();
    await ended;
  });
});
