import fs from 'node:fs';

/** A process that holds a descriptor of a socket. */
export interface Holder {
  pid: number;
  /** Its command line, spaces between the arguments, cut at 200 characters. */
  command: string;
}

/** For each inode, the pids (other than this process) with a descriptor of that socket; read from /proc/<pid>/fd. */
export function holdersOf(inodes: Set<number>): Map<number, number[]> {
  const out = new Map<number, number[]>();
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return out;
  }
  for (const p of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    const seen = new Set<number>();
    for (const fd of fds) {
      let link: string;
      try {
        link = fs.readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      const ino = m ? Number(m[1]) : -1;
      if (!inodes.has(ino) || seen.has(ino)) continue;
      seen.add(ino);
      out.set(ino, [...(out.get(ino) ?? []), Number(p)]);
    }
  }
  return out;
}

/** The command line of `pid`, or '' once it is gone. */
export function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 200);
  } catch {
    return '';
  }
}

/** The parent pid of `pid`, or 0 once it is gone. */
export function parentOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** True when `pid` is `root` or descends from it. */
export function descendsFrom(pid: number, root: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 128; p = parentOf(p), hops++) if (p === root) return true;
  return false;
}

/**
 * The processes that hold one of this supervisor's listening sockets (`fds`) without any right to:
 * not this process or its ancestors (systemd holds a socket unit's sockets; a predecessor
 * supervisor during an upgrade holds them all), not what descends from a live generation's reaper
 * (`roots`), and not the predecessor's own generations (what descends from an ancestor other
 * than pid 1 that holds the socket too). What is left escaped a generation that has ended, and
 * keeps the port: the next `baton run` would fail with EADDRINUSE.
 */
export function strays(fds: number[], roots: number[]): Map<number, Holder[]> {
  const inodeOf = new Map<number, number>();
  for (const fd of fds) {
    try {
      inodeOf.set(fd, fs.fstatSync(fd).ino);
    } catch {
      continue;
    }
  }
  const holders = holdersOf(new Set(inodeOf.values()));
  const ancestors: number[] = [];
  for (let p = parentOf(process.pid); p > 0 && ancestors.length < 128; p = parentOf(p)) ancestors.push(p);
  const out = new Map<number, Holder[]>();
  for (const [fd, ino] of inodeOf) {
    const pids = holders.get(ino) ?? [];
    const predecessors = ancestors.filter((a) => a !== 1 && pids.includes(a));
    const rightful = [...roots, ...predecessors];
    const found = pids
      .filter((p) => !ancestors.includes(p) && !rightful.some((r) => descendsFrom(p, r)))
      .map((pid) => ({ pid, command: commandOf(pid) }));
    if (found.length > 0) out.set(fd, found);
  }
  return out;
}

/**
 * The processes (other than this one) holding a listening TCP socket on `port`, from
 * /proc/net/tcp and tcp6: what keeps a port taken when bind fails with EADDRINUSE.
 */
export function tcpPortHolders(port: number): Holder[] {
  const inodes = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1] ?? '';
      // st 0A is TCP_LISTEN; the local port is the hex after the colon.
      if (cols[3] === '0A' && parseInt(local.slice(local.indexOf(':') + 1), 16) === port) inodes.add(Number(cols[9]));
    }
  }
  const pids = new Set([...holdersOf(inodes).values()].flat());
  return [...pids].map((pid) => ({ pid, command: commandOf(pid) }));
}
