import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { Address } from '../../shared/address.ts';
import { ENV } from '../../shared/launch-env.ts';
import { closeFd, execShimPath, sendFds, sockName, socketPair, tcpListen, unixListen } from '../../shared/native/native.ts';
import type { SupervisorMessage } from '../../shared/protocol.ts';
import { NotifySocket } from '../systemd/notify-socket.ts';
import type { ChildPort, Os, ProcessExit, SpawnSpec } from './os.ts';
import { tcpProbe } from '../readiness/tcp-probe.ts';

/** Lines of a generation's stderr kept for failure reports. */
const STDERR_TAIL = 50;
/** How long to wait, after a process has exited, for its stderr to be read to the end. */
const STDERR_GRACE_MS = 250;

/** The operating system as the supervisor uses it: real processes, real sockets. */
export const realOs: Os = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  spawn: spawnGeneration,
  listen,
  httpProbe,
  tcpProbe: (address, pid) => tcpProbe(address, () => [pid, ...descendants(pid)]),
  close(fd, address) {
    closeFd(fd);
    if (address.kind === 'unix') fs.rmSync(address.path, { force: true });
  },
};

function listen(address: Address, backlog: number, mode?: number, reusePort = false): { fd: number; bound: Address } {
  if (address.kind === 'tcp') {
    const fd = tcpListen(address.host, address.port, backlog, net.isIPv6(address.host) && address.host !== '::', reusePort);
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

function httpProbe(address: Address, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const target = address.kind === 'unix' ? { socketPath: address.path } : { host: address.host, port: address.port };
    const req = http.get({ ...target, path, agent: false, timeout: 1000, headers: { 'user-agent': 'baton-readiness' } }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
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

function spawnGeneration(spec: SpawnSpec): ChildPort {
  const notify = spec.notifySocket !== undefined ? new NotifySocket(spec.notifySocket) : undefined;
  const [parentEnd, childEnd] = socketPair();
  const channelFd = 3 + spec.listenFds.length;
  const child = spawn(execShimPath, [String(process.pid), spec.command, ...spec.args], {
    cwd: spec.cwd,
    env: { ...spec.env, [ENV.fdChannel]: String(channelFd), ...(notify ? { [ENV.notifySocket]: notify.path } : {}) },
    stdio: ['ignore', spec.onLine ? 'pipe' : 'inherit', 'pipe', ...spec.listenFds, childEnd, 'ipc'],
    // Its own session: a terminal's Ctrl-C reaches only the supervisor, which drains in order.
    detached: true,
  });
  closeFd(childEnd);

  const onLine = spec.onLine;
  if (onLine) forwardLines(child.stdout, (line) => onLine('stdout', line));
  const tail: string[] = [];
  let partial = '';
  let stderrEnded = false;
  child.stderr?.on('data', (chunk: Buffer) => {
    if (!onLine) process.stderr.write(chunk);
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      onLine?.('stderr', line);
      if (line.length > 0) tail.push(line);
    }
    tail.splice(0, Math.max(0, tail.length - STDERR_TAIL));
  });
  const stderrDone = new Promise<void>((resolve) => {
    child.stderr?.on('close', () => {
      stderrEnded = true;
      if (partial.length > 0) onLine?.('stderr', partial);
      resolve();
    });
  });

  const exitListeners: ((exit: ProcessExit) => void)[] = [];
  let exited = false;
  const finish = (exit: ProcessExit): void => {
    if (exited) return;
    exited = true;
    closeFd(parentEnd);
    notify?.close();
    const deliver = (): void => {
      if (partial.length > 0) tail.push(partial);
      partial = '';
      for (const l of exitListeners) l(exit);
    };
    if (stderrEnded) deliver();
    else {
      const timer = setTimeout(deliver, STDERR_GRACE_MS);
      void stderrDone.then(() => {
        clearTimeout(timer);
        deliver();
      });
    }
  };
  child.on('exit', (code, signal) => finish({ code, signal }));
  // Also keeps a generation that exits while we write to it from taking the supervisor down.
  child.on('error', (err) => {
    if (child.pid !== undefined) return;
    // ENOENT names baton-exec even when what is missing is the working directory.
    const noCwd = (err as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(spec.cwd);
    tail.push(noCwd ? `spawn failed: the working directory ${spec.cwd} (cwd) does not exist` : `spawn failed: ${err.message}`);
    finish({ code: 127, signal: null });
  });

  return {
    pid: child.pid ?? 0,
    send(message: SupervisorMessage) {
      if (!child.connected) return false;
      // A failed write means the generation is exiting; its exit is reported separately.
      child.send(message, () => {});
      return true;
    },
    sendFds(fds, payload) {
      sendFds(parentEnd, fds, Buffer.from(payload));
    },
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    onMessage(listener) {
      child.on('message', listener);
    },
    onExit(listener) {
      exitListeners.push(listener);
    },
    stderrTail: () => [...tail, ...(partial ? [partial] : [])],
    isAccepting: (fds) => isAccepting(child.pid ?? 0, fds),
    readNotifications: () => notify?.read(child.pid ?? 0) ?? [],
  };
}

/** Hands each complete line of `stream` to `onLine` (and what is left at its end). */
function forwardLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  let partial = '';
  stream?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  stream?.on('close', () => {
    if (partial.length > 0) onLine(partial);
    partial = '';
  });
}

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

function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    let children: string;
    try {
      children = fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of children.trim().split(/\s+/).filter(Boolean)) {
      out.push(Number(c));
      queue.push(Number(c));
    }
  }
  return out;
}
