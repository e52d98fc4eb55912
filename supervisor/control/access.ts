import fs from 'node:fs';
import { BatonError } from '../../shared/errors.ts';
import type { PeerCred } from '../../shared/native/native.ts';

/**
 * The gid of `spec`: a number is taken as a gid, anything else is looked up in /etc/group (Node
 * has no getgrnam; groups that only exist in LDAP or another NSS source must be given by number).
 */
export function resolveGroup(spec: string | number, groupFile = '/etc/group'): number {
  if (typeof spec === 'number' || /^\d+$/.test(spec)) return Number(spec);
  let text: string;
  try {
    text = fs.readFileSync(groupFile, 'utf8');
  } catch (err) {
    throw new BatonError('ERR_CONFIG', `cannot look up group '${spec}': ${(err as Error).message}; give its gid instead`, { cause: err });
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === spec && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new BatonError('ERR_CONFIG', `no group named '${spec}' in ${groupFile}; give an existing group name or a numeric gid`);
}

/**
 * The supplementary groups of process `pid`. SO_PEERCRED carries only the primary gid, so the rest
 * comes from /proc, read as the peer is accepted: the pid cannot have been reused while its
 * connection is still being accepted unless the peer handed the socket on and exited.
 */
export function supplementaryGroups(pid: number): number[] {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return [];
  }
  const line = /^Groups:[ \t]*(.*)$/m.exec(status)?.[1] ?? '';
  return line.split(/\s+/).filter(Boolean).map(Number);
}

/** Whether a control peer may drive the instance: its owner, root, or (with a control group) a member of that group. */
export function admits(peer: PeerCred, owner: number, group: number | undefined, groupsOf = supplementaryGroups): boolean {
  if (peer.uid === owner || peer.uid === 0) return true;
  if (group === undefined) return false;
  return peer.gid === group || groupsOf(peer.pid).includes(group);
}
