/**
 * Cross-process synchronisation over the segment header: the registration spinlock (holder pid in
 * an Int32, stolen from a dead holder) and the seqlock readers use while the owner moves values.
 * The mapping is not a SharedArrayBuffer, so Atomics.wait cannot park on it: waiters spin, then
 * sleep 1 ms at a time.
 */
import fs from 'node:fs';

/** Registration-lock waiters check the holder's pid after it has held the lock this long. */
export const LOCK_STEAL_AFTER_MS = 50;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` milliseconds (Atomics.wait on a private SharedArrayBuffer). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** True when `pid` names a live process: it exists (kill 0 succeeds or EPERM) and is not a zombie. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false; // gone between the two checks
  }
}

/** Why acquireLock gave up: the live pid holding the lock. */
export class LockTimeout extends Error {
  readonly holder: number;
  constructor(holder: number, timeoutMs: number) {
    super(`held by live pid ${holder} for over ${timeoutMs} ms`);
    this.holder = holder;
  }
}

/**
 * False only when /proc says `pid` has no mapping of the file with inode `ino`: a process that
 * never mapped the segment cannot be in the middle of registering in it, whatever pid the lock
 * word holds. True when it cannot tell (another user's process, /proc unreadable).
 */
export function mapsInode(pid: number, ino: number): boolean {
  let maps: string;
  try {
    maps = fs.readFileSync(`/proc/${pid}/maps`, 'latin1');
  } catch {
    return true;
  }
  const needle = ` ${ino} `;
  for (const line of maps.split('\n')) {
    // "start-end perms offset dev inode path": the inode is the fifth field.
    const fields = line.split(/\s+/, 6);
    if (fields[4] !== undefined && ` ${fields[4]} ` === needle && fields[5]) return true;
  }
  return false;
}

/**
 * Takes the lock word `words[index]` (0 = free, else the holder's pid) for this process. A holder
 * seen for LOCK_STEAL_AFTER_MS that is no longer alive, or that `canHold` rejects, loses the lock;
 * its pid is returned (else 0). Throws LockTimeout after timeoutMs of waiting on live holders.
 */
export function acquireLock(words: Int32Array, index: number, timeoutMs: number, canHold: (pid: number) => boolean = () => true): number {
  const me = process.pid;
  const start = performance.now();
  let holder = 0;
  let holderSince = start;
  for (let spins = 0; ; spins++) {
    const previous = Atomics.compareExchange(words, index, 0, me);
    if (previous === 0) return 0;
    const now = performance.now();
    if (previous !== holder) {
      holder = previous;
      holderSince = now;
    } else if (now - holderSince >= LOCK_STEAL_AFTER_MS && (!isAlive(holder) || !canHold(holder))) {
      if (Atomics.compareExchange(words, index, holder, me) === holder) return holder;
    }
    if (now - start > timeoutMs) throw new LockTimeout(holder, timeoutMs);
    if (spins > 200) sleepSync(1);
  }
}

/** Releases a lock this process holds. */
export function releaseLock(words: Int32Array, index: number): void {
  Atomics.compareExchange(words, index, process.pid, 0);
}

/** Runs `write` with the sequence `words[index]` odd, so seqlock readers retry (a single writer: the owner). */
export function seqWrite(words: Int32Array, index: number, write: () => void): void {
  Atomics.add(words, index, 1);
  try {
    write();
  } finally {
    Atomics.add(words, index, 1);
  }
}

/** How long a seqlock reader retries before it reads anyway: an owner's write takes microseconds. */
export const SEQ_READ_DEADLINE_MS = 100;

/**
 * Runs `read` until it ran entirely while the sequence was even and unchanged. The sequence lives
 * in memory any process mapping the segment can scribble on, so the wait is bounded: after
 * deadlineMs (or 100 ms on an odd sequence whose writer is dead) it reads anyway and calls
 * `stuck` with the sequence value it gave up on.
 */
export function seqRead<T>(
  words: Int32Array,
  index: number,
  writerPid: () => number,
  read: () => T,
  stuck: (sequence: number) => void = () => {},
  deadlineMs = SEQ_READ_DEADLINE_MS,
): T {
  const start = performance.now();
  for (let spins = 0; ; spins++) {
    const before = Atomics.load(words, index);
    const waited = performance.now() - start;
    if ((before & 1) === 0 || (waited > 100 && !isAlive(writerPid()))) {
      const result = read();
      if (Atomics.load(words, index) === before) return result;
    }
    if (waited > deadlineMs) {
      stuck(before);
      return read();
    }
    if (spins > 1000) sleepSync(1);
  }
}
