/**
 * Where the lean upstream client's connections read into (net's `onread`, upstream-h1.ts), and so
 * whether a body chunk has to be copied before it goes downstream.
 *
 * Node's parser copies every body chunk into a new buffer (llhttp's on_body), and a 64 KiB
 * answer's copy is 64 KiB of memory outside V8's heap: under load that was ~600 MB/s, which made
 * V8 run a full mark-compact every 64 MB (20 a second) on top of the memcpy — a tenth of the
 * proxy's CPU on 64 KiB answers. So a body framed by Content-Length is cut out of the read buffer
 * by the connection itself (no parser call, no copy), and a connection whose answer is large reads
 * into a buffer of its own, which it lends to the downstream write: reused for the next read when
 * the write took it whole at once (what happens on a socket that keeps up), replaced by a new one
 * when the downstream kept a reference (a partial write queued in libuv, or backpressure).
 *
 * Every other connection reads into one buffer shared by the process: parsed before the next read
 * and never lent (a chunk of it that is passed on is copied), since another connection's next read
 * goes there too.
 */

/** Shared by every connection not reading a large answer: 256 KiB, a 64 KiB answer and its head in one read. */
export const SHARED_READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** From this Content-Length on a connection reads into a buffer of its own (smaller ones are copied cheaply, from Node's pool). */
export const OWN_BUFFER_FROM = 16 * 1024;
/** An own buffer holds a whole answer and its head up to this, as the shared one does. */
const OWN_MAX = 256 * 1024;
const OWN_STEP = 16 * 1024;

/** One connection's choice of read buffer. */
export class ReadBuffers {
  private own: Buffer | undefined = undefined;
  /** Size the next own buffer should have; 0: read into the shared buffer. */
  private want = 0;
  private lent = false;

  /** The answer being read has `length` body bytes (Content-Length), or none is known (-1). */
  expect(length: number): void {
    this.want = length >= OWN_BUFFER_FROM ? Math.min(OWN_MAX, Math.ceil((length + 1024) / OWN_STEP) * OWN_STEP) : 0;
  }

  /** The downstream kept a reference to a chunk of the own buffer: it must not be read into again. */
  lend(): void {
    this.lent = true;
  }

  /** Whether `buf` (what a read went into) may be lent: only a connection's own buffer is. */
  isOwn(buf: Uint8Array): boolean {
    return buf === this.own;
  }

  /** net's `onread.buffer` generator: the buffer of the connection's next read. */
  next(): Buffer {
    if (this.lent) {
      this.lent = false;
      this.own = undefined;
    }
    if (this.want === 0) {
      // Back to small answers: the own buffer goes (memory held by an idle pooled connection).
      this.own = undefined;
      return SHARED_READ_BUFFER;
    }
    if (this.own === undefined || this.own.length < this.want) this.own = Buffer.allocUnsafeSlow(this.want);
    return this.own;
  }
}

/** A copy of buf[at, at + n): a small one byte by byte (Buffer.from of a view makes the view, then the copy). */
export function copyOf(buf: Buffer, at: number, n: number): Buffer {
  if (n > 64) return Buffer.from(buf.subarray(at, at + n));
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = buf[at + i]!;
  return out;
}
