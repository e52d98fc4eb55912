/**
 * The request id the proxy makes when a client sent none: a random (version 4) UUID, as
 * crypto.randomUUID() makes it, from the same kind of buffered entropy, but written as one string.
 * randomUUID() joins 20 pieces into a rope that every head it goes into flattens again: twice the
 * time of a request's other header work and ~450 bytes of garbage a request (README, bench:proxy).
 */
import { randomFillSync } from 'node:crypto';

/** Random bytes for 256 ids at a time (randomUUID buffers 128). */
const pool = Buffer.allocUnsafe(16 * 256);
let at = pool.length;
/** Both hex digits of a byte, as the two latin1 bytes they are written as (little-endian). */
const HEX_PAIR = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  const hex = i.toString(16).padStart(2, '0');
  HEX_PAIR[i] = hex.charCodeAt(0) | (hex.charCodeAt(1) << 8);
}
const text = Buffer.alloc(36, '-');
/** Where each of the 16 bytes' two digits go in `8-4-4-4-12`. */
const SLOT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/** A new random UUID (RFC 9562 version 4), lower-case. */
export function newRequestId(): string {
  if (at === pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  const o = at;
  at += 16;
  // Version 4 and the RFC variant, as randomUUID sets them.
  pool[o + 6] = (pool[o + 6]! & 0x0f) | 0x40;
  pool[o + 8] = (pool[o + 8]! & 0x3f) | 0x80;
  for (let i = 0; i < 16; i++) {
    const pair = HEX_PAIR[pool[o + i]!]!;
    const s = SLOT[i]!;
    text[s] = pair & 0xff;
    text[s + 1] = pair >> 8;
  }
  return text.toString('latin1');
}
