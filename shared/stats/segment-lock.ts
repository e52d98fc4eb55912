/**
 * The two locks in segment 0's header that every process of an instance shares, as one process
 * takes them: the registration lock (a pid word, held to add stats or segments, stolen from a
 * holder that is dead or does not map the segment) and the seqlock (odd while an owner moves
 * values between slots or edits the generation table, so readers retry). It stands apart from
 * segment.ts because it is a cross-process protocol on two header words plus the owner's policy of
 * never waiting long on a wedged holder; which files the set maps and how it grows do not enter
 * into it.
 */
import { BatonError } from '../errors.ts';
import { H, STATS_ERR } from './layout.ts';
import { LockTimeout, acquireLock, isAlive, mapsInode, releaseLock, seqRead, seqWrite } from './locks.ts';
import type { StatsLogger } from './segment.ts';

/** How long the owner's seqlock writes wait for a registration lock a live process holds before writing without it. */
export const OWNER_LOCK_WAIT_MS = 100;

/** Segment 0's registration lock and seqlock, as held by this process. */
export class SegmentLocks {
  readonly #header: Int32Array;
  readonly #ino: number;
  readonly #instance: string;
  readonly #logger: StatsLogger;
  readonly #report: (what: string, message: string) => void;
  #held = false;
  /** Pid that held the lock when the owner last gave up waiting: the owner does not wait on it again. */
  #wedgedBy = 0;

  /** `header` and `ino` are segment 0's; `report` warns once per kind of damage (SegmentSet.report). */
  constructor(header: Int32Array, ino: number, instance: string, logger: StatsLogger, report: (what: string, message: string) => void) {
    this.#header = header;
    this.#ino = ino;
    this.#instance = instance;
    this.#logger = logger;
    this.#report = report;
  }

  /** See SegmentSet.lock. */
  lock(timeoutMs = 1_000): void {
    let stolenFrom: number;
    const holder = Atomics.load(this.#header, H.lock);
    if (holder !== 0 && holder === this.#wedgedBy && isAlive(holder)) {
      throw new BatonError(STATS_ERR.invalid, `stats: the registration lock of ${this.#instance} is still held by live pid ${holder}, which sat on it before`);
    }
    try {
      stolenFrom = acquireLock(this.#header, H.lock, timeoutMs, (pid) => pid !== process.pid && mapsInode(pid, this.#ino));
      this.#wedgedBy = 0;
    } catch (err) {
      if (!(err instanceof LockTimeout)) throw err;
      this.#wedgedBy = err.holder;
      throw new BatonError(STATS_ERR.invalid, `stats: the registration lock of ${this.#instance} is ${err.message}`);
    }
    if (stolenFrom !== 0) {
      this.#logger.info(
        isAlive(stolenFrom)
          ? `stats: took the registration lock of ${this.#instance} from live pid ${stolenFrom}, which does not map the segment`
          : `stats: took the registration lock of ${this.#instance} from dead pid ${stolenFrom}`,
      );
    }
    this.#held = true;
  }

  /** True while this process holds the registration lock (taken by lock()). */
  get locked(): boolean {
    return this.#held;
  }

  /** Releases the registration lock taken by lock(). */
  unlock(): void {
    if (!this.#held) return;
    this.#held = false;
    releaseLock(this.#header, H.lock);
  }

  /** See SegmentSet.exclusive. */
  exclusive(write: () => void): void {
    let take = !this.#held;
    if (take) {
      try {
        this.lock(OWNER_LOCK_WAIT_MS);
      } catch {
        // A live process that maps the segment sits on the lock: the owner's own writes must not
        // wait on it (they run on the supervisor's event loop). Only another owner mid-upgrade
        // could overlap, and that costs a torn read at worst.
        take = false;
        this.#report(`wedged ${this.#wedgedBy}`, `stats: the registration lock of ${this.#instance} is held by live pid ${this.#wedgedBy} for over ${OWNER_LOCK_WAIT_MS} ms; the owner writes without it`);
      }
    }
    try {
      const seq = Atomics.load(this.#header, H.seq);
      // Only owners write the seqlock, and always under the lock: odd here is damage, not a write in progress.
      if ((seq & 1) !== 0 && take) {
        this.#logger.warn(`stats: the seqlock of ${this.#instance} was odd (${seq}) with no write in progress; reset it`);
        Atomics.compareExchange(this.#header, H.seq, seq, seq + 1);
      }
      seqWrite(this.#header, H.seq, write);
    } finally {
      if (take) this.unlock();
    }
  }

  /** See SegmentSet.consistent. */
  consistent<T>(read: () => T): T {
    const header = this.#header;
    return seqRead(header, H.seq, () => header[H.ownerPid]!, read, (seq) => {
      const owner = header[H.ownerPid] === process.pid;
      // No owner write takes anywhere near the deadline: the owner mends a sequence stuck odd.
      const mended = owner && (seq & 1) !== 0 && Atomics.compareExchange(header, H.seq, seq, seq + 1) === seq;
      this.#report(
        `seq ${seq}`,
        `stats: the seqlock of ${this.#instance} stayed at ${seq} (a write in progress) for over 100 ms; read anyway, values may be torn${mended ? '; reset it' : ''}`,
      );
    });
  }
}
