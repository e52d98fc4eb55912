/**
 * The only loader of the Node-API addon and the exec shim, which sit side by side: a source build
 * (build/Release/, made by `npm ci` in a checkout, or by the install script when no prebuild fits)
 * wins over the prebuild the package ships for this architecture (prebuilds/linux-x64-glibc/,
 * prebuilds/linux-arm64-glibc/). System failures throw an Error whose `code` is the errno name,
 * `errno` the (positive) errno number and `syscall` the failing call; bad arguments throw
 * TypeError/RangeError with `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { join } from 'node:path';
import { BatonError } from '../errors.ts';
import { packageRoot } from '../package-root.ts';
import type { Binding, Datagram, JemallocStats, MallInfo2, PeerCred, RecvResult, SockName } from './binding.d.ts';

export type { Datagram, JemallocStats, MallInfo2, PeerCred, RecvResult, SockName } from './binding.d.ts';

/** Architectures the package ships a prebuild for (scripts/build-dist.ts, scripts/prebuild-arm64.ts). */
const PREBUILT_ARCHS: readonly string[] = ['x64', 'arm64'];

/** Directories that may hold baton.node and baton-exec, best first. */
function candidates(root: string): string[] {
  const dirs = [join(root, 'build', 'Release')];
  // One prebuild per architecture: Node-API is ABI-stable, so it serves every Node >= 22 there (glibc).
  if (process.platform === 'linux' && PREBUILT_ARCHS.includes(process.arch)) dirs.push(join(root, 'prebuilds', `linux-${process.arch}-glibc`));
  return dirs;
}

function load(): { binding: Binding; dir: string } {
  const root = packageRoot();
  const dirs = candidates(root);
  const dir = dirs.find((d) => existsSync(join(d, 'baton.node')));
  // npm runs the install script only once it is approved (npm install-scripts approve), so say how to run it by hand.
  const fix = `build it from source with \`node scripts/install-native.cjs\` in ${root} (needs a C compiler, make and python for node-gyp), or run npm ci in a checkout`;
  if (dir === undefined) {
    throw new BatonError('ERR_NATIVE_LOAD', `no native addon for ${process.platform}-${process.arch} in ${dirs.join(' or ')}; ${fix}`);
  }
  const path = join(dir, 'baton.node');
  try {
    return { binding: createRequire(import.meta.url)(path) as Binding, dir };
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new BatonError('ERR_NATIVE_LOAD', `cannot load the native addon ${path} (${reason}); ${fix}`, { cause });
  }
}

const { binding, dir: addonDir } = load();

/**
 * Absolute path of the exec shim: `baton-exec EXPECTED_PPID CMD [ARGS...]` arms PR_SET_PDEATHSIG(SIGKILL), exits 1 if its parent is not EXPECTED_PPID, sets LISTEN_PID when LISTEN_FDS is set, then execvp's CMD (127/126 when that fails).
 * `baton-exec --reap CONTROL_FD GRACE_MS EXPECTED_PPID CMD [ARGS...]` stays as CMD's subreaper instead: it forks CMD (LISTEN_PID = CMD's pid, written as "PID\n" on CONTROL_FD), forwards signals, kills the whole tree on 'K' or end of file on CONTROL_FD, and when CMD exits ends every descendant (SIGTERM, SIGKILL GRACE_MS later) and exits as CMD did.
 */
export const execShimPath: string = join(addonDir, 'baton-exec');

/** Listening TCP socket on a numeric IPv4/IPv6 host (SO_REUSEADDR, SO_REUSEPORT when `reusePort`; IPV6_V6ONLY = ipv6Only for v6 hosts); returns a blocking, close-on-exec fd that is never accepted on. */
export function tcpListen(host: string, port: number, backlog: number, ipv6Only: boolean, reusePort = false): number {
  return reusePort ? binding.tcpListen(host, port, backlog, ipv6Only, true) : binding.tcpListen(host, port, backlog, ipv6Only);
}

/** Listening AF_UNIX stream socket bound to a filesystem path; the caller unlinks stale files and sets the mode. */
export function unixListen(path: string, backlog: number): number {
  return binding.unixListen(path, backlog);
}

/** getsockname(2) of a socket fd; abstract unix names are reported with a leading '@'. */
export function sockName(fd: number): SockName {
  return binding.sockName(fd);
}

/** A connected AF_UNIX SOCK_SEQPACKET pair, both ends close-on-exec and blocking. */
export function socketPair(): [number, number] {
  return binding.socketPair();
}

/** Sends one message (1..4096 payload bytes, a string is sent as UTF-8) carrying up to 16 fds, without blocking; throws EAGAIN when the peer's queue is full. */
export function sendFds(sock: number, fds: number[], payload: Buffer | string): void {
  binding.sendFds(sock, fds, typeof payload === 'string' ? Buffer.from(payload) : payload);
}

/** Receives one message without blocking; the fds arrive close-on-exec and are the caller's to close. Throws EAGAIN when nothing is queued, ECONNRESET at end of stream, EMSGSIZE if the message or its fds were truncated. */
export function recvFds(sock: number): RecvResult {
  return binding.recvFds(sock);
}

/** close(2); an fd owned by a Node handle must be closed through that handle instead. */
export function closeFd(fd: number): void {
  binding.close(fd);
}

/** Sets or clears FD_CLOEXEC: a descriptor inherited from systemd or a previous supervisor must not leak into generations. */
export function setCloexec(fd: number, on: boolean): void {
  binding.setCloexec(fd, on);
}

/** SO_PEERCRED of a connected AF_UNIX socket: the peer's pid, uid and gid as of connect. */
export function peerCred(fd: number): PeerCred {
  return binding.peerCred(fd);
}

/**
 * SO_PEERCRED of an accepted net.Socket; uid -1 when it cannot be read (refuse such a peer).
 * Node has no public API for an accepted socket's descriptor, so this is the one place that reads
 * libuv's handle: should a Node release drop `_handle.fd`, every peer reads as unknown and is
 * refused, never admitted.
 */
export function socketPeerCred(socket: { readonly _handle?: unknown }): PeerCred {
  const fd = (socket._handle as { fd?: unknown } | undefined)?.fd;
  if (typeof fd !== 'number' || fd < 0) return { pid: -1, uid: -1, gid: -1 };
  try {
    return binding.peerCred(fd);
  } catch {
    return { pid: -1, uid: -1, gid: -1 };
  }
}

/** prctl(PR_SET_PDEATHSIG): the signal this process gets when the thread that spawned it exits; 0 clears it. */
export function setPdeathsig(signal: NodeJS.Signals | number): void {
  binding.setPdeathsig(typeof signal === 'number' ? signal : signalNumber(signal));
}

function signalNumber(name: NodeJS.Signals): number {
  const number = (constants.signals as Partial<Record<string, number>>)[name];
  if (number === undefined) {
    throw Object.assign(new TypeError(`Unknown signal: ${String(name)}`), { code: 'ERR_UNKNOWN_SIGNAL' });
  }
  return number;
}

/** Sends one datagram (≤ 4096 bytes) to an AF_UNIX SOCK_DGRAM socket such as $NOTIFY_SOCKET ('@' prefix = abstract namespace), with up to 16 fds; never blocks, so a full queue throws EAGAIN. */
export function sdNotify(path: string, message: string, fds: number[] = []): void {
  binding.sdNotify(path, message, fds);
}

/** Binds a non-blocking AF_UNIX datagram socket at `path` (≤ 107 bytes, else ENAMETOOLONG) that learns each sender's pid; the caller sets its mode and unlinks it after closing. */
export function dgramBind(path: string): number {
  return binding.dgramBind(path);
}

/** Receives one datagram without blocking: null when none is queued. Descriptors sent along are closed, not returned; a datagram over 4096 bytes is dropped with EMSGSIZE. */
export function dgramRecv(fd: number): Datagram | null {
  return binding.dgramRecv(fd);
}

/**
 * Shared read/write mapping of length bytes of fd at offset (a page multiple); unmapped when the
 * ArrayBuffer is garbage-collected, and the fd may be closed right away. Should another process
 * cut the file short, the pages past its end read as private zeros instead of raising SIGBUS
 * (counted by busFaults).
 */
export function mmap(fd: number, length: number, offset = 0): ArrayBuffer {
  return binding.mmap(fd, length, offset);
}

/** SIGBUS faults absorbed so far in mappings made by mmap: accesses past the end of a file someone cut short. */
export function busFaults(): number {
  return binding.busFaults();
}

/** jemalloc's own accounting (bytes allocated, active, resident, mapped, retained); null unless jemalloc is this process's malloc. */
export function jemallocStats(): JemallocStats | null {
  return binding.jemallocStats();
}

/** glibc mallinfo2(): the allocator's own accounting, in bytes and chunk counts; null where the libc has none (musl, glibc < 2.33). */
export function mallinfo2(): MallInfo2 | null {
  return binding.mallinfo2();
}

/** glibc malloc_trim(pad): returns freed heap memory to the kernel; true when some was released, null where the libc has none (musl). */
export function mallocTrim(pad = 0): boolean | null {
  return binding.mallocTrim(pad);
}

/** glibc malloc_info(0) as its XML document (`<malloc version="1">…`); null where the libc has none (musl). */
export function mallocInfo(): string | null {
  return binding.mallocInfo();
}

/** jemalloc's purge of every arena (`arena.<MALLCTL_ARENAS_ALL>.purge`): unused dirty and muzzy pages go back to the kernel; null unless jemalloc is this process's malloc. */
export function jemallocPurge(): boolean | null {
  return binding.jemallocPurge();
}

/** Bytes of the address range [start, start + length) resident in RAM (mincore), whole pages; throws ENOMEM for a range not mapped. */
export function residentBytes(start: number, length: number): number {
  return binding.residentBytes(start, length);
}
