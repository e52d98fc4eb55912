/**
 * Types of the Node-API addon built from `shared/native/src/*.c` (build/Release/baton.node).
 * Only `shared/native/native.ts` loads it. Every function throws an Error whose `code` is the errno
 * name (`EADDRINUSE`, `EAGAIN`, …), `errno` the number and `syscall` the failing call. The glibc
 * malloc extras return null where the libc lacks them (musl, old glibc): the addon loads anyway.
 */

export interface SockName {
  family: 'IPv4' | 'IPv6' | 'unix';
  /** Numeric address, or the socket path for `unix` (empty when unnamed). */
  address: string;
  /** 0 for `unix`. */
  port: number;
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export interface RecvResult {
  fds: number[];
  payload: Buffer;
}

export interface Datagram {
  payload: Buffer;
  /** The sender's pid (SCM_CREDENTIALS), 0 when the kernel did not say. */
  pid: number;
}

export interface MallInfo2 {
  arena: number;
  ordblks: number;
  smblks: number;
  hblks: number;
  hblkhd: number;
  usmblks: number;
  fsmblks: number;
  uordblks: number;
  fordblks: number;
  keepcost: number;
}

export interface JemallocStats {
  allocated: number;
  active: number;
  resident: number;
  mapped: number;
  retained: number;
}

export interface Binding {
  /** socket+SO_REUSEADDR(+IPV6_V6ONLY)+bind+listen; never accepts. Returns a CLOEXEC, blocking fd. */
  tcpListen(host: string, port: number, backlog: number, ipv6Only: boolean, reusePort?: boolean): number;
  /** socket+bind+listen on a filesystem path (the caller unlinks stale files and sets the mode). */
  unixListen(path: string, backlog: number): number;
  /** getsockname of a socket fd. */
  sockName(fd: number): SockName;
  /** AF_UNIX SOCK_SEQPACKET pair, both ends CLOEXEC. */
  socketPair(): [number, number];
  /** One sendmsg with SCM_RIGHTS (MSG_DONTWAIT|MSG_NOSIGNAL); payload must be non-empty, ≤ 4096 bytes, fds ≤ 16. */
  sendFds(sock: number, fds: number[], payload: Buffer): void;
  /** One recvmsg (MSG_DONTWAIT|MSG_CMSG_CLOEXEC); throws EAGAIN when nothing is queued, ECONNRESET on EOF. */
  recvFds(sock: number): RecvResult;
  /** close(2). */
  close(fd: number): void;
  /** fcntl(F_SETFD) setting or clearing FD_CLOEXEC. */
  setCloexec(fd: number, on: boolean): void;
  /** SO_PEERCRED of a connected AF_UNIX socket. */
  peerCred(fd: number): PeerCred;
  /** prctl(PR_SET_PDEATHSIG, signal). */
  setPdeathsig(signal: number): void;
  /** One datagram to an AF_UNIX SOCK_DGRAM path ('@' prefix = abstract namespace), optionally with fds. */
  sdNotify(path: string, message: string, fds: number[]): void;
  /** AF_UNIX SOCK_DGRAM socket (NONBLOCK, CLOEXEC, SO_PASSCRED) bound to a filesystem path; the caller sets the mode and unlinks it. */
  dgramBind(path: string): number;
  /** One recvmsg (MSG_DONTWAIT) of ≤ 4096 bytes; null when nothing is queued; fds sent along are closed; EMSGSIZE for a longer datagram (consumed). */
  dgramRecv(fd: number): Datagram | null;
  /** mmap(MAP_SHARED, PROT_READ|PROT_WRITE) of length bytes at offset; munmap when the buffer is collected. */
  mmap(fd: number, length: number, offset: number): ArrayBuffer;
  /** How many SIGBUS faults inside a mapping made by mmap were absorbed (the file had been cut short). */
  busFaults(): number;
  /** glibc mallinfo2(); null where the libc has none (musl, glibc < 2.33). */
  mallinfo2(): MallInfo2 | null;
  /** jemalloc's stats.{allocated,active,resident,mapped,retained} via mallctl; null when jemalloc is not the malloc. */
  jemallocStats(): JemallocStats | null;
  /** glibc malloc_trim(pad); true when memory was released; null where the libc has none (musl). */
  mallocTrim(pad: number): boolean | null;
  /** glibc malloc_info(0) XML; null where the libc has none (musl). */
  mallocInfo(): string | null;
  /** jemalloc mallctl arena.<ALL>.purge; true, or null when jemalloc is not the malloc. */
  jemallocPurge(): boolean | null;
  /** Bytes of [start, start + length) resident in RAM (mincore). */
  residentBytes(start: number, length: number): number;
}
