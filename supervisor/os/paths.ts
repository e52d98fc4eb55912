import fs from 'node:fs';
import path from 'node:path';
import { BatonError } from '../../shared/errors.ts';

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
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
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
