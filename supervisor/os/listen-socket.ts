/**
 * The listening sockets the supervisor binds and holds (Os.listen, Os.close): TCP through the
 * addon (SO_REUSEPORT, IPV6_V6ONLY), Unix paths with their mode, a stale socket file replaced.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Address } from '../../shared/address.ts';
import { closeFd, sockName, tcpListen, unixListen } from '../../shared/native/native.ts';
import { tcpPortHolders } from './socket-holders.ts';

/** Binds and listens on `address`; a Unix socket gets `mode`. What is bound (the port a 0 got) comes back with the fd. */
export function listenSocket(address: Address, backlog: number, mode?: number, reusePort = false): { fd: number; bound: Address } {
  if (address.kind === 'tcp') {
    let fd: number;
    try {
      fd = tcpListen(address.host, address.port, backlog, net.isIPv6(address.host) && address.host !== '::', reusePort);
    } catch (err) {
      // Name what keeps the port: often what an earlier generation left running.
      const holders = (err as { code?: string }).code === 'EADDRINUSE' && address.port > 0 ? tcpPortHolders(address.port) : [];
      if (holders.length > 0) (err as Error).message += `; held by ${holders.map((h) => `pid ${h.pid} (${h.command})`).join(', ')}`;
      throw err;
    }
    const name = sockName(fd);
    return { fd, bound: { kind: 'tcp', host: name.address, port: name.port } };
  }
  removeStaleSocket(address.path);
  const fd = unixListen(address.path, backlog);
  try {
    if (mode !== undefined) fs.chmodSync(address.path, mode);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  return { fd, bound: address };
}

/** A socket file nobody listens on any more (its owner was killed) is removed so bind can succeed. */
function removeStaleSocket(path: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) return;
  const listening = fs
    .readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .some((line) => {
      const cols = line.trim().split(/\s+/);
      // Flags 00010000 is __SO_ACCEPTCON: a listening socket bound to that path.
      return cols[7] === path && (parseInt(cols[3] ?? '0', 16) & 0x10000) !== 0;
    });
  if (!listening) fs.rmSync(path, { force: true });
}

/** Closes a held listener; a Unix socket's file goes with it. */
export function closeSocket(fd: number, address: Address): void {
  closeFd(fd);
  if (address.kind === 'unix') fs.rmSync(address.path, { force: true });
}
