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
 * Takes the lock word `words[index]` (0 = free, else the holder's pid) for this process. A holder
 * seen for LOCK_STEAL_AFTER_MS that is no longer alive loses the lock; its pid is returned (else 0).
 * Throws LockTimeout after timeoutMs of waiting on live holders.
 */
export function acquireLock(words: Int32Array, index: number, timeoutMs: number): number {
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
    } else if (now - holderSince >= LOCK_STEAL_AFTER_MS && !isAlive(holder)) {
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

/** Runs `read` until it ran entirely while the sequence was even and unchanged; after 100 ms on an odd sequence whose writer is dead, reads anyway. */
export function seqRead<T>(words: Int32Array, index: number, writerPid: () => number, read: () => T): T {
  const start = performance.now();
  for (let spins = 0; ; spins++) {
    const before = Atomics.load(words, index);
    if ((before & 1) === 0 || (performance.now() - start > 100 && !isAlive(writerPid()))) {
      const result = read();
      if (Atomics.load(words, index) === before) return result;
    }
    if (spins > 1000) sleepSync(1);
  }
}
