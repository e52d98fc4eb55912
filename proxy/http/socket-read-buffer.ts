/**
 * Reads of an accepted socket into a buffer the caller owns, with a callback per read, as
 * `net.connect({ onread })` gives a client socket (upstream-h1.ts) and net.Server does not offer.
 *
 * Without it every read of a lean downstream connection is a fresh 64 KiB allocation shrunk to the
 * bytes read, an ArrayBuffer, a Buffer and a trip through the Readable stream to a 'data' event:
 * a few percent of the proxy's CPU on small requests. With it the request head is parsed straight
 * from one buffer shared by the process (the lean path copies what it keeps past the read).
 *
 * It uses what `onread` is built on: the stream handle's `useUserBuffer()` and net.Socket's own
 * slots for the buffer and the callback (found by their symbols' names). Where a Node lacks them,
 * or the handle is not a plain stream handle node:http could consume, `readInto` says false and
 * the caller reads 'data' events as before.
 */
import net from 'node:net';

interface Slots {
  buffer: symbol;
  callback: symbol;
}

/** net.Socket's kBuffer and kBufferCb, or undefined where a socket does not have both. */
const slots = ((): Slots | undefined => {
  try {
    const probe = new net.Socket();
    const named = (name: string) => Object.getOwnPropertySymbols(probe).find((s) => s.description === name);
    const buffer = named('kBuffer');
    const callback = named('kBufferCb');
    probe.destroy();
    return buffer && callback ? { buffer, callback } : undefined;
  } catch {
    return undefined;
  }
})();

type Handle = { useUserBuffer?: (buf: Uint8Array) => void; isStreamBase?: boolean; _consumed?: boolean };
type Slotted = net.Socket & Record<symbol, unknown> & { _handle?: Handle | null };

/** Whether this Node has what readInto needs. */
export const readIntoAvailable = slots !== undefined;

/**
 * From now on the socket's reads go into `buffer` and to `callback(n, buffer)` (bytes 0…n), valid
 * only until it returns; false from it stops reading until `socket.resume()`, as a full 'data'
 * buffer would. False (nothing changed) where this cannot be done.
 */
export function readInto(socket: net.Socket, buffer: Buffer, callback: (n: number, buf: Buffer) => boolean): boolean {
  const handle = (socket as Slotted)._handle;
  // isStreamBase and not consumed: node:http's server consumes such a handle with its own parser,
  // which is what a hand-over (downstream-h1.ts) relies on to read past this buffer.
  if (!slots || !handle || typeof handle.useUserBuffer !== 'function' || handle.isStreamBase !== true || handle._consumed) return false;
  const s = socket as Slotted;
  s[slots.buffer] = buffer;
  s[slots.callback] = callback;
  handle.useUserBuffer(buffer);
  return true;
}

/**
 * Reads go to the socket's readable side again ('data' events, each a copy), for whoever takes it
 * next: node:http for what its parser does not read itself (an upgrade's bytes after it lets go).
 */
export function readIntoStream(socket: net.Socket): void {
  if (!slots) return;
  (socket as Slotted)[slots.callback] = (n: number, buf: Buffer): boolean => socket.push(Buffer.from(buf.subarray(0, n)));
}
