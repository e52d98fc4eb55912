import type { Stats } from 'node:fs';
import path from 'node:path';
import { BatonError } from '../../shared/errors.ts';

// Not `import fs from 'node:fs'`: the ES facade reads every export, and fs's ReadStream getter
// loads the streams, ~5 ms of every client command's start (`baton reload`, issue #19).
const fs = process.getBuiltinModule('node:fs');

/** Where instances keep their control sockets: $BATON_RUNTIME_DIR, $XDG_RUNTIME_DIR/baton or /tmp/baton-UID. */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BATON_RUNTIME_DIR) return path.resolve(env.BATON_RUNTIME_DIR);
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'baton');
  return `/tmp/baton-${process.getuid?.() ?? 0}`;
}

/** The control socket of instance `name`, unless the configuration names one. */
export function controlSocketPath(name: string, configured?: string): string {
  return configured ?? path.join(runtimeDir(), `${name}.sock`);
}

/**
 * Creates `dir` (0700) if needed and checks it is ours and closed to others: a control socket in a
 * directory others can write to could be swapped for theirs. With a control `group`, the directory
 * is opened to that group for reading and traversal only (0750, group-owned), never for writing.
 */
export function ensurePrivateDir(dir: string, group?: number): void {
  // The way there first (what exists of it), so that nothing is created under a directory another user controls.
  checkTrustedPath(dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkTrustedPath(dir);
  const stat = fs.lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!stat.isDirectory()) throw new BatonError('ERR_CONTROL', `${dir} is not a directory`);
  if (stat.uid !== uid) {
    throw new BatonError('ERR_CONTROL', `${dir} belongs to uid ${stat.uid}, not ${uid}: refusing to put a control socket there`);
  }
  const open = stat.mode & 0o077;
  const groupReady = group !== undefined && open === 0o050 && stat.gid === group;
  if (open !== 0 && !groupReady) {
    const wanted = group === undefined ? `run chmod 700 ${dir}` : `expected 0700, or 0750 owned by group ${group} (it is group ${stat.gid})`;
    throw new BatonError(
      'ERR_CONTROL',
      `${dir} is open to others (mode ${(stat.mode & 0o777).toString(8)}): refusing to put a control socket there; ${wanted}`,
    );
  }
  if (group === undefined || groupReady) return;
  try {
    fs.chownSync(dir, uid, group);
    fs.chmodSync(dir, 0o750);
  } catch (err) {
    throw new BatonError('ERR_CONTROL', `cannot open ${dir} to group ${group}: ${(err as Error).message} (the owner must be a member of the group)`, {
      cause: err,
    });
  }
}

/** Who may own a directory on a trusted path: root and this process's user, plus `also`. */
function trustedOwners(also: number[] = []): Set<number> {
  return new Set([0, process.getuid?.() ?? 0, ...also]);
}

/**
 * Checks that nobody outside `trusted` can replace `target` or any directory leading to it, the
 * way ssh checks authorized_keys and systemd refuses unsafe path transitions: every directory on
 * the way (symbolic links followed, each link checked too) is owned by a trusted uid and writable
 * by nobody else, unless it is sticky (like /tmp), where others may add entries but not rename or
 * remove ours. The last component is not checked here: its owner and mode are the caller's rule.
 * Components that do not exist yet end the walk: whoever creates them is checked next time.
 */
export function checkTrustedPath(target: string, trusted: Set<number> = trustedOwners(), what = 'runtime directory'): void {
  const absolute = path.resolve(target);
  const pending = absolute.split('/').filter(Boolean);
  let at = '/';
  let links = 0;
  checkDir(at, fs.statSync(at), absolute, trusted, what);
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      at = path.dirname(at);
      continue;
    }
    const next = path.join(at, part);
    let stat: Stats;
    try {
      stat = fs.lstatSync(next);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    if (stat.isSymbolicLink()) {
      if (++links > 40) throw new BatonError('ERR_CONTROL', `too many symbolic links on the way to ${absolute}`);
      // A link cannot be changed, only replaced, which its (already checked) directory governs; its owner still must be trusted.
      if (!trusted.has(stat.uid)) throw unsafe(absolute, next, `is a symbolic link owned by uid ${stat.uid}`, trusted, what);
      const to = fs.readlinkSync(next);
      pending.unshift(...to.split('/').filter(Boolean));
      if (to.startsWith('/')) at = '/';
      continue;
    }
    at = next;
    if (pending.length > 0) checkDir(at, stat, absolute, trusted, what);
  }
}

function checkDir(dir: string, stat: Stats, target: string, trusted: Set<number>, what: string): void {
  if (!stat.isDirectory()) return;
  if (!trusted.has(stat.uid)) throw unsafe(target, dir, `belongs to uid ${stat.uid}`, trusted, what);
  if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
    const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
    throw unsafe(target, dir, `is writable by ${stat.mode & 0o002 ? 'every user' : `group ${stat.gid}`} (mode ${mode}) without the sticky bit`, trusted, what);
  }
}

function unsafe(target: string, dir: string, why: string, trusted: Set<number>, what: string): BatonError {
  const owners = [...trusted].map((u) => (u === 0 ? 'root' : `uid ${u}`)).join(' or ');
  return new BatonError(
    'ERR_CONTROL',
    `refusing the ${what} ${target}: ${dir} ${why}, so another user could replace what is under it; ` +
      `every directory on the way must belong to ${owners} and be writable by nobody else (or be sticky, like /tmp). ` +
      'Set BATON_RUNTIME_DIR or control-socket to a directory that is, or fix its owner and mode',
  );
}

/**
 * A client's check of the control socket it is about to trust: the socket's directory and every
 * one above it must be safe to trust (checkTrustedPath), and the directory itself writable by its
 * owner alone. It may belong to another user only when that user shares it with a group of ours
 * (control-group): a group that user could only have chosen if we could already control it.
 */
export function checkControlSocketPath(socketPath: string): void {
  const dir = path.dirname(path.resolve(socketPath));
  let stat: Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    return; // nothing there: the connect reports it
  }
  const ours = new Set([process.getgid?.() ?? 0, ...(process.getgroups?.() ?? [])]);
  const shared = stat.uid !== (process.getuid?.() ?? 0) && stat.uid !== 0 && ours.has(stat.gid) && stat.gid !== 0 && (stat.mode & 0o050) === 0o050;
  const trusted = trustedOwners(shared ? [stat.uid] : []);
  checkTrustedPath(dir, trusted, 'control socket directory');
  if (!trusted.has(stat.uid)) throw unsafe(socketPath, dir, `belongs to uid ${stat.uid}`, trusted, 'control socket');
  if ((stat.mode & 0o022) !== 0) {
    throw unsafe(socketPath, dir, `is writable by others (mode ${(stat.mode & 0o7777).toString(8).padStart(4, '0')})`, trusted, 'control socket');
  }
}

/**
 * Creates `dir/name` 0700 if needed and checks it is a directory of ours closed to others, as what
 * lives inside the runtime directory must be. One of ours that is open (`tighten`: made by an older
 * Baton with the umask's mode) is closed; otherwise an open one is refused.
 */
export function ensurePrivateSubdir(dir: string, name: string, tighten = false): string {
  const sub = path.join(dir, name);
  // Also where no control socket checked the way (baton dev): nothing is made under a directory others control.
  checkTrustedPath(sub);
  fs.mkdirSync(sub, { mode: 0o700, recursive: true });
  const stat = fs.lstatSync(sub);
  const uid = process.getuid?.() ?? 0;
  if (stat.isDirectory() && stat.uid === uid && (stat.mode & 0o077) !== 0 && tighten) fs.chmodSync(sub, 0o700);
  else if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o077) !== 0) {
    const found = stat.isDirectory() ? `owner uid ${stat.uid}, mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}` : 'not a directory';
    throw new BatonError('ERR_CONTROL', `${sub} must be a directory of uid ${uid} closed to others (it is: ${found}): remove it, or chown and chmod 700 it`);
  }
  return sub;
}
