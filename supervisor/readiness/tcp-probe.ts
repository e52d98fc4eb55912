/**
 * Readiness `tcp`: a connection through the held listener, counted only once the new generation
 * has accepted it. A bare connect would prove nothing — the kernel completes the handshake on a
 * listening socket whoever accepts, and during a reload the old generation accepts too — so the
 * accepted end is looked for among the generation's descriptors. Unlike the epoll check this sees
 * any accept loop: blocking accept(), select(), poll(), threads.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Address } from '../../shared/address.ts';

/** How long one probe connection waits to be accepted before it is given up. */
const PROBE_MS = 1000;
const CHECK_MS = 10;

/** Resolves true when the connection made through `address` is held by one of `pids()`. */
export function tcpProbe(address: Address, pids: () => number[]): Promise<boolean> {
  if (address.kind !== 'tcp') return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.host, port: address.port });
    const deadline = Date.now() + PROBE_MS;
    let timer: NodeJS.Timeout | undefined;
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const check = (): void => {
      const inode = acceptedInode(address, socket.localPort ?? 0);
      // Accepted, but by another process (the generation being replaced): this probe is spent.
      if (inode !== undefined) return finish(holds(pids(), inode));
      if (Date.now() >= deadline) return finish(false);
      timer = setTimeout(check, CHECK_MS);
    };
    socket.once('error', () => finish(false));
    socket.once('connect', check);
  });
}

/**
 * The inode of the server end of our connection once it is accepted: its local port is the
 * listener's and its remote port our local one. Until accept() it has no file, so inode 0.
 */
function acceptedInode(address: Address & { kind: 'tcp' }, clientPort: number): number | undefined {
  const table = net.isIPv6(address.host) ? '/proc/net/tcp6' : '/proc/net/tcp';
  let text: string;
  try {
    text = fs.readFileSync(table, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1]?.split(':')[1];
    const remote = cols[2]?.split(':')[1];
    if (local === undefined || remote === undefined) continue;
    if (parseInt(local, 16) !== address.port || parseInt(remote, 16) !== clientPort) continue;
    const inode = Number(cols[9]);
    if (inode !== 0) return inode;
  }
  return undefined;
}

function holds(pids: number[], inode: number): boolean {
  const wanted = `socket:[${inode}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === wanted) return true;
      } catch {
        continue;
      }
    }
  }
  return false;
}
