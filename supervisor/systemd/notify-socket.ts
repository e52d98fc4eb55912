/**
 * A generation's NOTIFY_SOCKET, the way systemd offers one to a service: an AF_UNIX datagram socket
 * the supervisor binds and reads, which the generation (or any process it starts) writes sd_notify
 * messages to. Node cannot watch such a socket, so its owner polls read().
 */
import fs from 'node:fs';
import path from 'node:path';
import { BatonError } from '../../shared/errors.ts';
import { closeFd, dgramBind, dgramRecv } from '../../shared/native/native.ts';
import type { Notification } from '../os/os.ts';
import { ensurePrivateSubdir } from '../os/paths.ts';

export class NotifySocket {
  readonly path: string;
  private fd: number | undefined;

  /** Binds at `file` (mode 0600, its directory created 0700): only this user can notify. */
  constructor(file: string) {
    this.path = file;
    // A directory others could write to would let them swap the socket for theirs.
    ensurePrivateSubdir(path.dirname(path.dirname(file)), path.basename(path.dirname(file)));
    // A file left by a supervisor that was killed; the path is per instance and generation.
    fs.rmSync(file, { force: true });
    try {
      this.fd = dgramBind(file);
    } catch (cause) {
      throw new BatonError('ERR_CONFIG', `cannot bind the generation's NOTIFY_SOCKET: ${(cause as Error).message}`, { cause });
    }
    try {
      fs.chmodSync(file, 0o600);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Queued notifications from `root` or its descendants; others are dropped. */
  read(root: number): Notification[] {
    const out: Notification[] = [];
    while (this.fd !== undefined) {
      let datagram;
      try {
        datagram = dgramRecv(this.fd);
      } catch (err) {
        // Over 4096 bytes: systemd drops such a message as well; the next one is still read.
        if ((err as NodeJS.ErrnoException).code === 'EMSGSIZE') continue;
        throw err;
      }
      if (datagram === null) break;
      if (inTree(datagram.pid, root)) out.push({ payload: datagram.payload.toString('utf8'), pid: datagram.pid });
    }
    return out;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeFd(this.fd);
    this.fd = undefined;
    fs.rmSync(this.path, { force: true });
  }
}

/**
 * True when `pid` is `root` or descends from it. A sender that has already exited (a one-shot
 * `systemd-notify --ready`) cannot be traced and is believed: the socket is 0600 in a private
 * directory, so it was one of this user's processes that was told the path.
 */
function inTree(pid: number, root: number): boolean {
  for (let p = pid, hops = 0; hops < 64; hops++) {
    if (p === root) return true;
    if (p <= 1 || p === process.pid) return false;
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
    } catch {
      return p === pid;
    }
    p = Number(/^PPid:\s*(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return false;
}
