/**
 * Segment files on disk: their names, creating one (0600, O_EXCL, header written, magic last),
 * mapping one and checking it belongs to a compatible set, and reading a possibly stale owner.
 *
 * The segment directory is usually /dev/shm, which every local user can write, so a file at a
 * segment's name is untrusted until checked: it is opened with O_NOFOLLOW (a symlink is refused)
 * and must be a regular file of this uid with mode 0600. A file that fails is refused with an
 * error naming it and saying how to fix it, never used, never removed. Picking another,
 * unpredictable name instead would keep a planted file from blocking a start, but generations and
 * `baton stats` find the segment by its name, and a name published anywhere else would need its
 * own trusted place; removing another user's file would hide the attack. A private `stats.dir`
 * ends the problem for good, and the error says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BatonError } from '../errors.ts';
import { mmap } from '../native/native.ts';
import { GENERATION_TABLE_OFFSET, H, HF, LAYOUT_VERSION, MAGIC, STATS_ERR, SegmentDamage, computeLayout, invalid, type Layout } from './layout.ts';
import { sleepSync } from './locks.ts';

/** One mapped segment file. */
export interface Segment {
  readonly index: number;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  /** The value area: `(writers + 1) × regionCells` slots, writer-major. */
  readonly values: Float64Array;
  /** Device and inode of the file when it was mapped. */
  readonly dev: number;
  readonly ino: number;
  /** The open file, kept so its size can be checked against the mapping (see SegmentSet.checkSizes). */
  readonly fd: number;
}

/** Default directory of segment files. */
export const DEFAULT_DIR = '/dev/shm';
const INSTANCE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Files are named per uid too: /dev/shm is shared by every user, instance names are not. */
export function prefix(instance: string): string {
  return `baton-${process.getuid?.() ?? 0}-${instance}`;
}

/** Path of segment k of an instance. */
export function segmentPath(dir: string, instance: string, k: number): string {
  return path.join(dir, `${prefix(instance)}.${k}`);
}

/** Checks an instance name (the one Baton's config accepts). */
export function checkInstance(instance: string): void {
  if (typeof instance !== 'string' || !INSTANCE.test(instance)) {
    invalid(`instance must be 1-64 letters, digits, "_", "." or "-", got ${JSON.stringify(instance)}`);
  }
}

/** Every segment file of an instance in `dir`, whatever its k. */
export function listSegmentFiles(dir: string, instance: string): string[] {
  const pattern = new RegExp(`^${prefix(instance).replace(/[.]/g, '\\.')}\\.\\d+$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => pattern.test(n)).map((n) => path.join(dir, n));
}

function view(buffer: ArrayBuffer, layout: Layout, index: number, stat: fs.Stats, fd: number): Segment {
  return {
    index,
    fd,
    dev: stat.dev,
    ino: stat.ino,
    i32: new Int32Array(buffer),
    f64: new Float64Array(buffer),
    u8: new Uint8Array(buffer),
    values: new Float64Array(buffer, layout.valuesOffset, (layout.writers + 1) * layout.regionCells),
  };
}

/** Creates segment file k exclusively (0600), sized and with its header written; magic last. */
export function createFile(file: string, layout: Layout, index: number, init: (s: Segment) => void): Segment {
  // O_EXCL refuses a symlink planted at the name as well as a file.
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  let segment: Segment;
  try {
    fs.fchmodSync(fd, 0o600); // whatever the umask
    fs.ftruncateSync(fd, layout.segmentBytes);
    segment = view(mmap(fd, layout.segmentBytes), layout, index, fs.fstatSync(fd), fd);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  const { i32, f64 } = segment;
  i32[H.version] = LAYOUT_VERSION;
  i32[H.headerBytes] = layout.headerBytes;
  i32[H.writers] = layout.writers;
  i32[H.generations] = layout.generations;
  i32[H.statsPerSegment] = layout.statsPerSegment;
  i32[H.cellsPerSegment] = layout.cellsPerSegment;
  i32[H.arenaBytes] = layout.arenaBytes;
  i32[H.segmentIndex] = index;
  f64[HF.segmentBytes] = layout.segmentBytes;
  init(segment);
  Atomics.store(i32, H.magic, MAGIC);
  return segment;
}

/** Maps an existing segment file and checks it is segment `index` of a layout-compatible set. */
export function mapFile(file: string, index: number, expected: Layout | undefined): { segment: Segment; layout: Layout } {
  const { fd, stat } = openTrusted(file, fs.constants.O_RDWR);
  try {
    return mapOpen(file, fd, stat, index, expected);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** Why a file at a segment's name must not be used, or undefined when it may. */
export function untrusted(stat: fs.Stats): string | undefined {
  const uid = process.getuid?.() ?? 0;
  if (stat.isSymbolicLink()) return 'it is a symbolic link';
  if (!stat.isFile()) return 'it is not a regular file';
  if (stat.uid !== uid) return `it belongs to uid ${stat.uid}, not to uid ${uid} running Baton`;
  if ((stat.mode & 0o7777) !== 0o600) return `its mode is ${(stat.mode & 0o7777).toString(8).padStart(4, '0')}, not 0600`;
  return undefined;
}

/** The error for a file at a segment's name that fails untrusted(). */
export function untrustedError(file: string, why: string): SegmentDamage {
  const uid = process.getuid?.() ?? 0;
  return new SegmentDamage(
    `stats: refusing to use ${file}: ${why}. Baton did not create it and will not trust it. ` +
      `Remove it (rm -f ${file}) after finding out who put it there, or set stats.dir (or $BATON_STATS_DIR) ` +
      `to a directory only uid ${uid} can write, such as /run/baton`,
  );
}

/** Opens a segment file without following a symlink and checks it is this uid's 0600 regular file. */
export function openTrusted(file: string, flags: number): { fd: number; stat: fs.Stats } {
  let fd: number;
  try {
    fd = fs.openSync(file, flags | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw untrustedError(file, 'it is a symbolic link');
    throw err;
  }
  const stat = fs.fstatSync(fd);
  const why = untrusted(stat);
  if (why !== undefined) {
    fs.closeSync(fd);
    throw untrustedError(file, why);
  }
  return { fd, stat };
}

function mapOpen(file: string, fd: number, stat: fs.Stats, index: number, expected: Layout | undefined): { segment: Segment; layout: Layout } {
  const size = stat.size;
  if (size < GENERATION_TABLE_OFFSET) {
    throw new BatonError(STATS_ERR.invalid, `stats: ${file} is ${size} bytes: not an initialised Baton stats segment`);
  }
  if (size > 2 ** 31) throw new BatonError(STATS_ERR.invalid, `stats: ${file} is ${size} bytes: larger than any Baton stats segment`);
  const buffer = mmap(fd, size);
  const i32 = new Int32Array(buffer);
  if (Atomics.load(i32, H.magic) !== MAGIC) {
    throw new BatonError(STATS_ERR.invalid, `stats: ${file} is not an initialised Baton stats segment (bad magic number)`);
  }
  if (i32[H.version] !== LAYOUT_VERSION) {
    throw new BatonError(
      STATS_ERR.incompatible,
      `stats: ${file} has layout version ${i32[H.version]}, this Baton reads version ${LAYOUT_VERSION}`,
    );
  }
  let layout: Layout;
  try {
    layout = computeLayout({
      writers: i32[H.writers]!,
      generations: i32[H.generations]!,
      statsPerSegment: i32[H.statsPerSegment]!,
      cellsPerSegment: i32[H.cellsPerSegment]!,
      arenaBytes: i32[H.arenaBytes]!,
    });
  } catch (err) {
    throw new SegmentDamage(`stats: ${file} is damaged: its header's capacities are out of range`, { cause: err });
  }
  if (expected && layout.version !== expected.version) {
    throw new BatonError(
      STATS_ERR.incompatible,
      `stats: ${file} has hot-restart version ${layout.version}, this process expects ${expected.version}: refusing to map it`,
    );
  }
  if (buffer.byteLength !== layout.segmentBytes || i32[H.segmentIndex] !== index) {
    throw new SegmentDamage(`stats: ${file} is damaged (size or segment index does not match its header)`);
  }
  return { segment: view(buffer, layout, index, stat, fd), layout };
}

/** Closes the file of a segment that is not kept (its mapping stays valid until collected). */
export function closeSegment(segment: Segment): void {
  fs.closeSync(segment.fd);
}

/** True when segment k belongs to the same set as segment 0: growth stamps segment 0's owner pid and creation time into it. */
export function sameSet(first: Segment, other: Segment): boolean {
  return other.i32[H.ownerPid] === first.i32[H.ownerPid] && other.f64[HF.createdAt] === first.f64[HF.createdAt];
}

/** Owner pid in an existing segment 0, waiting up to 200 ms for a concurrent creator to write it; undefined when it never appears. */
export function waitForOwner(file: string): number | undefined {
  const header = Buffer.alloc(GENERATION_TABLE_OFFSET);
  const deadline = performance.now() + 200;
  for (;;) {
    let fd: number;
    try {
      fd = openTrusted(file, fs.constants.O_RDONLY).fd;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let read: number;
    try {
      read = fs.readSync(fd, header, 0, header.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    const pid = read >= 4 * (H.ownerPid + 1) ? header.readInt32LE(4 * H.ownerPid) : 0;
    if (pid > 0) return pid;
    if (performance.now() > deadline) return undefined;
    sleepSync(5);
  }
}

/** Unlinks a segment file unless it is another user's (or a symlink, or the wrong mode): that one is refused, not removed. */
export function removeOwn(file: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return;
  }
  const why = untrusted(stat);
  if (why !== undefined) throw untrustedError(file, why);
  fs.rmSync(file, { force: true });
}
