/**
 * A process tree as /proc shows it: whether a pid still runs, its descendants, and whether they
 * accept on a set of listening sockets. Works for any program that uses epoll, without its cooperation.
 */
import fs from 'node:fs';

/**
 * True when `pid` (or one of its descendants) has every listening socket in an epoll set, i.e. it
 * is accepting on them. Read from /proc, so it works for any program that uses epoll (Node, Go,
 * Python's asyncio, nginx) without its cooperation.
 */
export function isAccepting(pid: number, listenFds: number[]): boolean {
  const wanted = new Set(listenFds.map((fd) => fs.fstatSync(fd).ino));
  const polled = new Set<number>();
  for (const p of [pid, ...descendants(pid)]) {
    for (const ino of polledInodes(p)) polled.add(ino);
  }
  for (const ino of wanted) if (!polled.has(ino)) return false;
  return true;
}

function polledInodes(pid: number): number[] {
  const out: number[] = [];
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:[eventpoll]') continue;
      const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      for (const match of info.matchAll(/^tfd:\s*\d+\s+events:\s*([0-9a-f]+).*\sino:\s*([0-9a-f]+)/gm)) {
        // EPOLLIN (0x1): watched for readability, which for a listening socket means accepting.
        if ((parseInt(match[1] as string, 16) & 0x1) !== 0) out.push(parseInt(match[2] as string, 16));
      }
    } catch {
      continue;
    }
  }
  return out;
}

/** Every descendant of `pid`, through the children lists of all its threads (a Go program forks from any). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    let tasks: string[];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      let children: string;
      try {
        children = fs.readFileSync(`/proc/${p}/task/${task}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of children.trim().split(/\s+/).filter(Boolean)) {
        out.push(Number(c));
        queue.push(Number(c));
      }
    }
  }
  return out;
}

/** True while `pid` runs: neither gone nor a zombie whose exit is yet to be read. */
export function running(pid: number): boolean {
  try {
    // The state follows the command name, which is in parentheses and may hold anything.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}
