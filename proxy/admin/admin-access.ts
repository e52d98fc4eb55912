/**
 * Who may use the admin listener. On a Unix socket every peer is checked with SO_PEERCRED: only
 * the proxy's own uid and root are answered (the socket file's mode is the first lock, this the
 * second). On TCP (loopback unless configured otherwise) the uid of a peer is unknown, so the
 * endpoints that change behaviour (the POSTs) need `Authorization: Bearer <token>`, the token
 * read from `app.admin.token_file`; without a token file they are refused.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import { parseAddress } from '../../shared/address.ts';
import { socketPeerCred, type PeerCred } from '../../shared/native/native.ts';

/** How the admin listener admits peers. */
export interface AdminAccess {
  /** The admin listener is a Unix socket: peers are checked by uid. */
  unix: boolean;
  /** The bearer token mutating requests on a TCP admin listener must carry; absent: they are refused. */
  token?: Buffer;
}

/** A refusal: the status (403) and what the client is told. */
export interface Refusal {
  status: 403;
  error: string;
}

/** Shortest token accepted: a guessable token is no lock. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * Reads a token file: opened without following a symlink, and it must be a regular file owned by
 * this process's uid with no group or other permission bits. Throws an Error saying which rule failed.
 */
export function readTokenFile(file: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new Error(`token file '${file}' is a symbolic link (give the file itself)`, { cause: err });
    throw new Error(`cannot open token file '${file}': ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = fs.fstatSync(fd);
    const uid = process.getuid?.() ?? 0;
    if (!st.isFile()) throw new Error(`token file '${file}' is not a regular file`);
    if (st.uid !== uid) throw new Error(`token file '${file}' is owned by uid ${st.uid}, not the proxy's uid ${uid}`);
    if ((st.mode & 0o077) !== 0) {
      throw new Error(`token file '${file}' has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: it must not be readable or writable by group or other (chmod 600)`);
    }
    const token = fs.readFileSync(fd, 'utf8').trim();
    if (token.length < MIN_TOKEN_LENGTH) throw new Error(`token file '${file}' holds ${token.length} characters; a token needs at least ${MIN_TOKEN_LENGTH}`);
    if (!/^[\x21-\x7e]+$/.test(token)) throw new Error(`token file '${file}' must hold one token of printable ASCII characters without spaces`);
    return Buffer.from(token);
  } finally {
    fs.closeSync(fd);
  }
}

const peers = new WeakMap<net.Socket, PeerCred>();

/** The peer's credentials, read once per connection; uid -1 when they cannot be read. */
function peerOf(socket: net.Socket): PeerCred {
  let peer = peers.get(socket);
  if (peer) return peer;
  // An unreadable peer is an unknown one (uid -1): refused below.
  peer = socketPeerCred(socket as unknown as { _handle?: unknown });
  peers.set(socket, peer);
  return peer;
}

function bearer(req: http.IncomingMessage): Buffer | undefined {
  const header = req.headers.authorization;
  const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? Buffer.from(m[1]!) : undefined;
}

function sameToken(a: Buffer, b: Buffer): boolean {
  // Digests first: timingSafeEqual needs equal lengths, and the length must not leak either.
  return crypto.timingSafeEqual(crypto.createHash('sha256').update(a).digest(), crypto.createHash('sha256').update(b).digest());
}

/** undefined when `req` may go on; else why not. `mutating`: the endpoint changes the proxy's behaviour. */
export function refusal(access: AdminAccess, req: http.IncomingMessage, mutating: boolean): Refusal | undefined {
  if (access.unix) {
    const own = process.getuid?.() ?? 0;
    const peer = peerOf(req.socket);
    if (peer.uid === own || peer.uid === 0) return undefined;
    return { status: 403, error: `uid ${peer.uid} may not use this admin listener (only the proxy's uid ${own} and root; peer pid ${peer.pid})` };
  }
  if (!mutating) return undefined;
  if (!access.token) {
    return { status: 403, error: `${req.method} ${req.url ?? ''} is refused on a TCP admin listener without app.admin.token_file (or make the admin listener a Unix socket)` };
  }
  const given = bearer(req);
  if (!given) return { status: 403, error: 'this endpoint needs Authorization: Bearer <the token in app.admin.token_file>' };
  if (!sameToken(given, access.token)) return { status: 403, error: 'wrong admin token' };
  return undefined;
}

/** The access rules for an admin listener at `address` (`unix:/path` or `/path`: peers checked by uid). */
export function adminAccess(address: string, token: Buffer | undefined): AdminAccess {
  const unix = parseAddress(address).kind === 'unix';
  return token ? { unix, token } : { unix };
}
