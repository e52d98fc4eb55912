import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  closeFd,
  dgramBind,
  dgramRecv,
  execShimPath,
  jemallocStats,
  mallinfo2,
  mallocInfo,
  mallocTrim,
  mmap,
  peerCred,
  recvFds,
  sdNotify,
  setCloexec,
  sendFds,
  setPdeathsig,
  sockName,
  socketPair,
  tcpListen,
  unixListen,
} from '../../../shared/native/native.ts';

const nativeUrl = pathToFileURL(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/native/native.ts'),
).href;
const errno = os.constants.errno;
const hasIPv6Loopback = Object.values(os.networkInterfaces()).some((addrs) =>
  addrs?.some((a) => a.family === 'IPv6' && a.address === '::1'),
);

let dir = '';
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-native-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

// Everything a test creates is registered here and released in afterEach, even when it fails.
const fds = new Set<number>();
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      cleanup();
    } catch {
      // Best effort: one failed cleanup must not leak the rest.
    }
  }
  for (const fd of fds) closeFd(fd);
  fds.clear();
});

function own<T extends number | number[]>(fd: T): T {
  for (const n of [fd].flat()) fds.add(n);
  return fd;
}

/** Hands an owned fd to someone else (a net.Server) that will close it. */
function disown(fd: number): number {
  fds.delete(fd);
  return fd;
}

function release(fd: number): void {
  fds.delete(fd);
  closeFd(fd);
}

function defer(cleanup: () => void): void {
  cleanups.push(cleanup);
}

function openFile(name: string, flags = 'w+'): number {
  const file = path.join(dir, name);
  return own(fs.openSync(file, flags));
}

function adopt(fd: number): net.Server {
  const server = new net.Server();
  defer(() => server.close());
  server.listen({ fd: disown(fd) });
  return server;
}

function connect(options: net.NetConnectOpts): Promise<net.Socket> {
  const socket = net.connect(options);
  defer(() => socket.destroy());
  return once(socket, 'connect').then(() => socket);
}

/** The next connection the server accepts; call it before connecting, the event may beat the client's. */
async function accepted(server: net.Server): Promise<net.Socket> {
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  defer(() => socket.destroy());
  return socket;
}

function track(child: ChildProcess): ChildProcess {
  defer(() => child.kill('SIGKILL'));
  return child;
}

/** Nobody reaps orphans in some containers, so a zombie counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

function killLater(pid: number): void {
  defer(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function lines(child: ChildProcess): AsyncIterator<string> {
  if (!child.stdout) throw new Error('child has no stdout pipe');
  return createInterface({ input: child.stdout })[Symbol.asyncIterator]();
}

async function nextLine(reader: AsyncIterator<string>): Promise<string> {
  const { value, done } = await reader.next();
  if (done) throw new Error('child closed stdout early');
  return value;
}

/** Runs an ES module in a fresh node (which strips the types of native.ts itself). */
function runNode(script: string, limitFds?: number): { status: number | null; stdout: string; stderr: string } {
  const node = [process.execPath, '--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script];
  const argv = limitFds === undefined ? node : ['sh', '-c', `ulimit -n ${limitFds} && exec "$@"`, 'sh', ...node];
  const [cmd = '', ...args] = argv;
  const { status, stdout, stderr } = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000 });
  return { status, stdout, stderr };
}

function fdFlags(fd: number): number {
  const match = /^flags:\s*([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  if (!match?.[1]) throw new Error(`no flags in /proc/self/fdinfo/${fd}`);
  return parseInt(match[1], 8);
}

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

function sysError(code: keyof typeof errno, syscall: string): object {
  return { code, errno: errno[code], syscall };
}

describe('tcpListen and sockName', () => {
  it('listens on 127.0.0.1 port 0 with a blocking close-on-exec fd that a net.Server can adopt', async () => {
    const fd = own(tcpListen('127.0.0.1', 0, 16, false));
    const name = sockName(fd);
    expect(name).toMatchObject({ family: 'IPv4', address: '127.0.0.1' });
    expect(name.port).toBeGreaterThan(0);
    expect(fdFlags(fd) & O_NONBLOCK).toBe(0);
    expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);

    // The kernel completes the handshake although nobody accepts yet.
    const client = await connect({ host: '127.0.0.1', port: name.port });
    expect((await accepted(adopt(fd))).remotePort).toBe(client.localPort);
  });

  it('fails with EADDRINUSE on a port that is already listening', () => {
    const { port } = sockName(own(tcpListen('127.0.0.1', 0, 16, false)));
    expect(() => tcpListen('127.0.0.1', port, 16, false)).toThrow(
      expect.objectContaining({
        ...sysError('EADDRINUSE', 'bind'),
        message: `tcpListen bind 127.0.0.1:${port}: EADDRINUSE (Address already in use)`,
      }),
    );
  });

  it.skipIf(!hasIPv6Loopback)('listens on ::1, and ipv6Only decides whether :: also takes the IPv4 port', () => {
    expect(sockName(own(tcpListen('::1', 0, 16, false)))).toMatchObject({ family: 'IPv6', address: '::1' });

    const { port } = sockName(own(tcpListen('::', 0, 16, true)));
    expect(sockName(own(tcpListen('0.0.0.0', port, 16, false)))).toEqual({ family: 'IPv4', address: '0.0.0.0', port });

    const dual = sockName(own(tcpListen('::', 0, 16, false)));
    expect(dual).toMatchObject({ family: 'IPv6', address: '::' });
    expect(() => tcpListen('0.0.0.0', dual.port, 16, false)).toThrow(expect.objectContaining(sysError('EADDRINUSE', 'bind')));
  });

  it('rejects bad arguments before any syscall', () => {
    expect(() => tcpListen('localhost', 0, 16, false)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => tcpListen('127.0.0.1', 65536, 16, false)).toThrow(
      expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => tcpListen('127.0.0.1', '80' as never, 16, false)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => tcpListen('127.0.0.1', 0, 16, 'yes' as never)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });

  it('sockName fails with ENOTSOCK on a regular file', () => {
    expect(() => sockName(openFile('plain'))).toThrow(expect.objectContaining(sysError('ENOTSOCK', 'getsockname')));
  });
});

describe('unixListen', () => {
  it('listens on a path that clients can connect to', async () => {
    const socketPath = path.join(dir, 'listen.sock');
    defer(() => fs.rmSync(socketPath, { force: true }));
    const fd = own(unixListen(socketPath, 16));
    expect(sockName(fd)).toEqual({ family: 'unix', address: socketPath, port: 0 });
    expect(fs.statSync(socketPath).isSocket()).toBe(true);
    await connect({ path: socketPath });
  });

  it('fails with EADDRINUSE when the path exists', () => {
    const socketPath = path.join(dir, 'taken.sock');
    defer(() => fs.rmSync(socketPath, { force: true }));
    own(unixListen(socketPath, 16));
    expect(() => unixListen(socketPath, 16)).toThrow(expect.objectContaining(sysError('EADDRINUSE', 'bind')));
  });

  it('fails with ENAMETOOLONG when the path does not fit in sun_path', () => {
    const long = path.join(dir, 'x'.repeat(120));
    expect(() => unixListen(long, 16)).toThrow(
      expect.objectContaining({ ...sysError('ENAMETOOLONG', 'bind'), message: expect.stringContaining(long) }),
    );
  });
});

describe('socketPair, sendFds and recvFds', () => {
  it('passes a listening fd and a payload; the received fd serves connections', async () => {
    const [a, b] = own(socketPair());
    const listener = own(tcpListen('127.0.0.1', 0, 16, false));
    const { port } = sockName(listener);
    sendFds(a, [listener], Buffer.from('{"listen":1}'));
    release(listener);

    const received = recvFds(b);
    expect(received.payload).toEqual(Buffer.from('{"listen":1}'));
    expect(received.fds).toHaveLength(1);
    const [fd = -1] = own(received.fds);
    expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(sockName(fd)).toEqual({ family: 'IPv4', address: '127.0.0.1', port });

    const server = adopt(fd);
    const connection = accepted(server);
    const client = await connect({ host: '127.0.0.1', port });
    expect((await connection).remotePort).toBe(client.localPort);
  });

  it('sends a string payload as UTF-8 and no fds', () => {
    const [a, b] = own(socketPair());
    sendFds(a, [], 'héllo');
    expect(recvFds(b)).toEqual({ fds: [], payload: Buffer.from('héllo') });
  });

  it('recvFds fails with EAGAIN when nothing is queued and ECONNRESET once the peer closed', () => {
    const [a, b] = own(socketPair());
    expect(() => recvFds(b)).toThrow(expect.objectContaining(sysError('EAGAIN', 'recvmsg')));
    release(a);
    expect(() => recvFds(b)).toThrow(expect.objectContaining(sysError('ECONNRESET', 'recvmsg')));
  });

  it('sendFds fails with EPIPE (and no SIGPIPE) once the peer closed', () => {
    const [a, b] = own(socketPair());
    release(b);
    expect(() => sendFds(a, [], 'x')).toThrow(expect.objectContaining(sysError('EPIPE', 'sendmsg')));
  });

  it('sendFds refuses empty or oversized payloads and too many fds', () => {
    const [a] = own(socketPair());
    const invalid = (name: string) => expect.objectContaining({ name, code: 'ERR_INVALID_ARG_VALUE' });
    expect(() => sendFds(a, [], '')).toThrow(invalid('RangeError'));
    expect(() => sendFds(a, [], Buffer.alloc(4097))).toThrow(invalid('RangeError'));
    expect(() => sendFds(a, new Array<number>(17).fill(a), 'x')).toThrow(invalid('RangeError'));
    expect(() => sendFds(a, [-1], 'x')).toThrow(invalid('RangeError'));
    expect(() => sendFds(a, 'x' as never, 'x')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('socketPair fails with EMFILE, and recvFds with EMSGSIZE when no fd is free for the received one', () => {
    const script = `
      import fs from 'node:fs';
      import { socketPair, sendFds, recvFds, closeFd } from ${JSON.stringify(nativeUrl)};
      const [a, b] = socketPair();
      sendFds(a, [a], 'x');
      const extra = [];
      const code = (fn) => { try { for (;;) fn(); } catch (e) { return e.code; } };
      const result = {
        socketPair: code(() => extra.push(...socketPair())),
        open: code(() => extra.push(fs.openSync('/dev/null'))),
        recvFds: code(() => recvFds(b)),
      };
      for (const fd of extra) closeFd(fd);
      result.afterwards = code(() => recvFds(b));
      console.log(JSON.stringify(result));
    `;
    const child = runNode(script, 256);
    expect(child.stderr).toBe('');
    // The truncated message is consumed: nothing is left to receive once fds are free again.
    expect(JSON.parse(child.stdout)).toEqual({ socketPair: 'EMFILE', open: 'EMFILE', recvFds: 'EMSGSIZE', afterwards: 'EAGAIN' });
  });
});

describe('recvFds bounds', () => {
  /** A python peer on one end of a socketPair sends one message per entry of `counts`, each carrying that many fds. */
  async function sendFromPython(counts: number[]): Promise<number> {
    const [ours, theirs] = own(socketPair());
    const sender = `
import socket, sys
s = socket.socket(fileno=3)
for count in map(int, sys.argv[1:]):
    socket.send_fds(s, [b'n=%d' % count], [0] * count)
print('sent', flush=True)
`;
    const python = track(
      spawn('python3', ['-c', sender, ...counts.map(String)], { stdio: ['ignore', 'pipe', 'inherit', theirs] }),
    );
    expect(await nextLine(lines(python))).toBe('sent');
    return ours;
  }

  const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

  it('accepts 16 fds; refuses 20 (over the maximum) and 30 (MSG_CTRUNC) with EMSGSIZE, closing every fd received', async () => {
    const sock = await sendFromPython([16, 20, 30]);
    const sixteen = recvFds(sock);
    own(sixteen.fds);
    expect(sixteen.payload.toString()).toBe('n=16');
    expect(sixteen.fds).toHaveLength(16);
    for (const fd of sixteen.fds) expect(fdFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);

    const before = openFds();
    expect(() => recvFds(sock)).toThrow(
      expect.objectContaining({ ...sysError('EMSGSIZE', 'recvmsg'), message: expect.stringContaining('20 fds, at most 16 accepted') }),
    );
    expect(openFds()).toBe(before);
    expect(() => recvFds(sock)).toThrow(
      expect.objectContaining({ ...sysError('EMSGSIZE', 'recvmsg'), message: expect.stringContaining('MSG_CTRUNC') }),
    );
    expect(openFds()).toBe(before);
    // Both refused messages were consumed.
    expect(() => recvFds(sock)).toThrow(expect.objectContaining(sysError('EAGAIN', 'recvmsg')));
  }, 20_000);
});

describe('closeFd', () => {
  it('closes once, then fails with EBADF', () => {
    const [fd = -1, peer = -1] = socketPair();
    own(peer);
    closeFd(fd);
    expect(() => closeFd(fd)).toThrow(
      expect.objectContaining({ ...sysError('EBADF', 'close'), message: `close fd ${fd}: EBADF (Bad file descriptor)` }),
    );
  });
});

describe('setCloexec', () => {
  const cloexec = (fd: number): boolean => {
    const flags = /flags:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '';
    return (parseInt(flags, 8) & 0o2000000) !== 0;
  };

  it('clears and sets FD_CLOEXEC, as /proc/self/fdinfo shows', () => {
    const fd = own(tcpListen('127.0.0.1', 0, 16, false));
    expect(cloexec(fd)).toBe(true);
    setCloexec(fd, false);
    expect(cloexec(fd)).toBe(false);
    setCloexec(fd, true);
    expect(cloexec(fd)).toBe(true);
  });

  it('fails with EBADF on a closed fd', () => {
    const [fd = -1, peer = -1] = socketPair();
    own(peer);
    closeFd(fd);
    expect(() => setCloexec(fd, false)).toThrow(expect.objectContaining(sysError('EBADF', 'fcntl')));
  });
});

describe('peerCred', () => {
  it('reports the pid, uid and gid of the process at the other end', async () => {
    const socketPath = path.join(dir, 'cred.sock');
    const server = net.createServer();
    defer(() => server.close());
    server.listen(socketPath);
    await once(server, 'listening');
    const connection = accepted(server);
    await connect({ path: socketPath });
    const fd = ((await connection) as unknown as { _handle: { fd: number } })._handle.fd;
    expect(peerCred(fd)).toEqual({ pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() });
  });

  it('fails with ENOTSOCK on a regular file', () => {
    expect(() => peerCred(openFile('not-a-socket'))).toThrow(expect.objectContaining(sysError('ENOTSOCK', 'getsockopt')));
  });
});

describe('setPdeathsig', () => {
  it('accepts signal names and numbers, and 0 clears it', () => {
    setPdeathsig('SIGTERM');
    setPdeathsig(os.constants.signals.SIGUSR2);
    setPdeathsig(0);
  });

  it('fails with EINVAL for an invalid signal and ERR_UNKNOWN_SIGNAL for an unknown name', () => {
    expect(() => setPdeathsig(999)).toThrow(expect.objectContaining(sysError('EINVAL', 'prctl')));
    expect(() => setPdeathsig('SIGNOPE' as NodeJS.Signals)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_UNKNOWN_SIGNAL' }),
    );
  });

  it('delivers the signal when the parent dies', async () => {
    const script = `
      import { setPdeathsig } from ${JSON.stringify(nativeUrl)};
      setPdeathsig('SIGKILL');
      console.log(process.pid);
      setInterval(() => {}, 60_000);
    `;
    const parent = track(
      spawn('sh', ['-c', '"$0" --disable-warning=ExperimentalWarning --input-type=module -e "$1" & wait', process.execPath, script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const pid = Number(await nextLine(lines(parent)));
    killLater(pid);
    expect(alive(pid)).toBe(true);
    parent.kill('SIGKILL');
    await until(() => !alive(pid), 2000, `pid ${pid} to die with its parent`);
  }, 20_000);
});

describe('sdNotify', () => {
  const receiver = `
import json, socket, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + name[1:] if name.startswith('@') else name)
s.settimeout(10)
print('ready', flush=True)
msg, fds, flags, _ = socket.recv_fds(s, 8192, 16)
ports = [socket.socket(fileno=fd).getsockname()[1] for fd in fds]
print(json.dumps({'message': msg.decode(), 'ports': ports, 'flags': flags}), flush=True)
`;

  async function roundTrip(address: string, message: string, fdsToSend: number[]): Promise<unknown> {
    const python = track(spawn('python3', ['-c', receiver, address], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const reader = lines(python);
    expect(await nextLine(reader)).toBe('ready');
    sdNotify(address, message, fdsToSend);
    return JSON.parse(await nextLine(reader));
  }

  it('sends one datagram with fds to a filesystem path', async () => {
    const socketPath = path.join(dir, 'notify.sock');
    defer(() => fs.rmSync(socketPath, { force: true }));
    const listener = own(tcpListen('127.0.0.1', 0, 16, false));
    const reply = await roundTrip(socketPath, 'READY=1\nSTATUS=up', [listener]);
    expect(reply).toEqual({ message: 'READY=1\nSTATUS=up', ports: [sockName(listener).port], flags: 0 });
  }, 20_000);

  it('sends to an abstract name given with a leading @', async () => {
    const reply = await roundTrip(`@baton-test-${process.pid}-${Date.now()}`, 'WATCHDOG=1', []);
    expect(reply).toEqual({ message: 'WATCHDOG=1', ports: [], flags: 0 });
  }, 20_000);

  it('fails with ENOENT when nothing listens at the path', () => {
    const missing = path.join(dir, 'missing.sock');
    expect(() => sdNotify(missing, 'READY=1')).toThrow(
      expect.objectContaining({ ...sysError('ENOENT', 'sendmsg'), message: expect.stringContaining(missing) }),
    );
  });
});

describe('dgramBind / dgramRecv', () => {
  function bound(name: string): { fd: number; socketPath: string } {
    const socketPath = path.join(dir, name);
    defer(() => fs.rmSync(socketPath, { force: true }));
    return { fd: own(dgramBind(socketPath)), socketPath };
  }

  it('returns null when nothing is queued, then each datagram with its sender pid, in order', () => {
    const { fd, socketPath } = bound('recv.sock');
    expect(dgramRecv(fd)).toBeNull();
    sdNotify(socketPath, 'READY=1\nSTATUS=up');
    sdNotify(socketPath, 'STOPPING=1');
    const first = dgramRecv(fd);
    expect(first?.payload.toString()).toBe('READY=1\nSTATUS=up');
    expect(first?.pid).toBe(process.pid);
    expect(dgramRecv(fd)?.payload.toString()).toBe('STOPPING=1');
    expect(dgramRecv(fd)).toBeNull();
  });

  it("reports another process's pid as the sender", async () => {
    const { fd, socketPath } = bound('python.sock');
    const sender = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b'READY=1', sys.argv[1])
print('sent', flush=True)
`;
    const python = track(spawn('python3', ['-c', sender, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] }));
    expect(await nextLine(lines(python))).toBe('sent');
    expect(dgramRecv(fd)).toEqual({ payload: Buffer.from('READY=1'), pid: python.pid });
  }, 20_000);

  it('closes descriptors sent along instead of keeping them', async () => {
    const { fd, socketPath } = bound('fds.sock');
    const listener = own(tcpListen('127.0.0.1', 0, 16, false));
    const { port } = sockName(listener);
    sdNotify(socketPath, 'FDSTORE=1', [listener]);
    release(listener);
    // The copy in flight keeps the socket listening until dgramRecv closes it.
    (await connect({ host: '127.0.0.1', port })).destroy();
    expect(dgramRecv(fd)?.payload.toString()).toBe('FDSTORE=1');
    const refused = net.connect({ host: '127.0.0.1', port });
    defer(() => refused.destroy());
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('drops a datagram over 4096 bytes with EMSGSIZE and goes on with the next', async () => {
    const { fd, socketPath } = bound('big.sock');
    const sender = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b'STATUS=' + b'x' * 5000, sys.argv[1])
s.sendto(b'READY=1', sys.argv[1])
print('sent', flush=True)
`;
    const python = track(spawn('python3', ['-c', sender, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] }));
    expect(await nextLine(lines(python))).toBe('sent');
    expect(() => dgramRecv(fd)).toThrow(expect.objectContaining(sysError('EMSGSIZE', 'recvmsg')));
    expect(dgramRecv(fd)?.payload.toString()).toBe('READY=1');
  }, 20_000);

  it('dgramRecv fails with EBADF on a closed fd and ENOTSOCK on a regular file', () => {
    const { fd } = bound('closed.sock');
    release(fd);
    expect(() => dgramRecv(fd)).toThrow(expect.objectContaining(sysError('EBADF', 'recvmsg')));
    expect(() => dgramRecv(openFile('not-a-dgram-socket'))).toThrow(expect.objectContaining(sysError('ENOTSOCK', 'recvmsg')));
  });

  it('refuses a path longer than sun_path with ENAMETOOLONG, and a taken path with EADDRINUSE', () => {
    const long = path.join(dir, 'x'.repeat(120));
    expect(() => dgramBind(long)).toThrow(expect.objectContaining({ ...sysError('ENAMETOOLONG', 'bind'), message: expect.stringContaining(long) }));
    const { socketPath } = bound('taken.sock');
    expect(() => dgramBind(socketPath)).toThrow(expect.objectContaining(sysError('EADDRINUSE', 'bind')));
  });
});

describe('mmap', () => {
  it('maps a /dev/shm file shared: writes show through another mapping and in the file', () => {
    const file = path.join('/dev/shm', `baton-test-${process.pid}-${Date.now()}`);
    const fd = own(fs.openSync(file, 'w+'));
    defer(() => fs.rmSync(file, { force: true }));
    fs.ftruncateSync(fd, 8192);
    const whole = new Uint8Array(mmap(fd, 8192));
    const secondPage = new Uint8Array(mmap(fd, 4096, 4096));
    release(fd); // a mapping outlives its fd

    expect(whole.byteLength).toBe(8192);
    whole.set(Buffer.from('through one'), 4096);
    expect(Buffer.from(secondPage.subarray(0, 11)).toString()).toBe('through one');
    secondPage.set(Buffer.from('and back'), 100);
    expect(Buffer.from(whole.subarray(4196, 4204)).toString()).toBe('and back');
    expect(fs.readFileSync(file).subarray(4096, 4107).toString()).toBe('through one');
  });

  it('fails with EBADF for a closed fd and EINVAL for an unaligned offset', () => {
    const fd = openFile('unaligned');
    fs.ftruncateSync(fd, 8192);
    expect(() => mmap(fd, 4096, 1)).toThrow(expect.objectContaining(sysError('EINVAL', 'mmap')));
    release(fd);
    expect(() => mmap(fd, 4096)).toThrow(expect.objectContaining(sysError('EBADF', 'mmap')));
  });
});

describe('malloc introspection', () => {
  it('mallinfo2 adds up', () => {
    const info = mallinfo2();
    if (info === null) throw new Error('mallinfo2() is null, but this libc is glibc');
    expect(Object.keys(info).sort()).toEqual(
      ['arena', 'fordblks', 'fsmblks', 'hblkhd', 'hblks', 'keepcost', 'ordblks', 'smblks', 'uordblks', 'usmblks'],
    );
    for (const value of Object.values(info)) expect(Number.isSafeInteger(value) && value >= 0).toBe(true);
    expect(info.arena).toBeGreaterThan(0);
    expect(info.uordblks + info.fordblks).toBe(info.arena);
  });

  it('mallocTrim returns a boolean and refuses a negative pad', () => {
    expect(typeof mallocTrim()).toBe('boolean');
    expect(typeof mallocTrim(1 << 20)).toBe('boolean');
    expect(() => mallocTrim(-1)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('jemallocStats is null under glibc malloc', () => {
    expect(jemallocStats()).toBeNull();
  });

  const jemalloc = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2'].find((p) => fs.existsSync(p));
  it.skipIf(!jemalloc)(jemalloc ? 'jemallocStats reads jemalloc when it is preloaded' : 'jemallocStats with jemalloc — skipped: libjemalloc2 is not installed', () => {
    const script = `import { jemallocStats } from ${JSON.stringify(nativeUrl)}; const keep = Buffer.alloc(1 << 20, 1); console.log(JSON.stringify(jemallocStats()), keep.length);`;
    const child = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], {
      env: { ...process.env, LD_PRELOAD: jemalloc },
      encoding: 'utf8',
    });
    expect(child.status, child.stderr).toBe(0);
    const stats = JSON.parse(child.stdout.split(' ')[0]!) as Record<string, number>;
    expect(Object.keys(stats).sort()).toEqual(['active', 'allocated', 'mapped', 'resident', 'retained']);
    expect(stats.allocated).toBeGreaterThan(1 << 20);
    expect(stats.active).toBeGreaterThanOrEqual(stats.allocated!);
    expect(stats.resident).toBeGreaterThanOrEqual(stats.active!);
  });

  it('mallocInfo returns the XML document', () => {
    const xml = mallocInfo();
    if (xml === null) throw new Error('mallocInfo() is null, but this libc is glibc');
    expect(xml.startsWith('<malloc version="1">')).toBe(true);
    expect(xml.trimEnd().endsWith('</malloc>')).toBe(true);
  });
});

describe('baton-exec', () => {
  function shim(args: string[], env: NodeJS.ProcessEnv = {}) {
    const { LISTEN_FDS: _fds, LISTEN_PID: _pid, ...inherited } = process.env;
    return spawnSync(execShimPath, args, { encoding: 'utf8', env: { ...inherited, ...env }, timeout: 10_000 });
  }

  it('sets LISTEN_PID to the pid that CMD runs as when LISTEN_FDS is set', () => {
    const result = shim([String(process.pid), 'sh', '-c', 'echo $$ $LISTEN_PID'], { LISTEN_FDS: '1' });
    expect(result.status).toBe(0);
    const [pid, listenPid] = result.stdout.trim().split(' ');
    expect(Number(pid)).toBeGreaterThan(0);
    expect(listenPid).toBe(pid);
  });

  it('leaves LISTEN_PID alone without LISTEN_FDS', () => {
    const result = shim([String(process.pid), 'sh', '-c', 'echo "[$LISTEN_PID]"']);
    expect(result.stdout).toBe('[]\n');
  });

  it('exits 1 silently when its parent is not EXPECTED_PPID', () => {
    const result = shim([String(process.pid + 1), 'sh', '-c', 'echo ran']);
    expect(result).toMatchObject({ status: 1, stdout: '', stderr: '' });
  });

  it('exits 127 with ENOENT when CMD does not exist, 126 with EACCES when it is not executable', () => {
    const missing = shim([String(process.pid), 'baton-no-such-command']);
    expect(missing.status).toBe(127);
    expect(missing.stderr).toBe("baton-exec: cannot execute 'baton-no-such-command': No such file or directory (ENOENT)\n");

    const file = path.join(dir, 'not-executable');
    fs.writeFileSync(file, 'echo hi\n', { mode: 0o644 });
    const denied = shim([String(process.pid), file]);
    expect(denied.status).toBe(126);
    expect(denied.stderr).toContain('(EACCES)');
  });

  // Field 41 of /proc/PID/stat is the policy: 0 SCHED_OTHER, 3 SCHED_BATCH, 5 SCHED_IDLE.
  it('BATON_CPU_SCHEDULING sets every thread of CMD to that policy, and CMD does not see the variable', () => {
    const policies = "const fs = require('fs'); console.log(fs.readdirSync('/proc/self/task').map((t) => fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8').split(') ')[1].split(' ')[38]).join(' '), '[' + (process.env.BATON_CPU_SCHEDULING ?? '') + ']')";
    for (const [want, policy] of [['batch', '3'], ['idle', '5'], ['other', '0']] as const) {
      const result = shim([String(process.pid), process.execPath, '-e', policies], { BATON_CPU_SCHEDULING: want });
      expect(result.status, result.stderr).toBe(0);
      const [threads, seen] = result.stdout.trim().split(' [');
      // Node's main thread and the V8 and libuv threads it started after exec.
      expect(threads!.split(' ').length).toBeGreaterThan(1);
      expect(new Set(threads!.split(' '))).toEqual(new Set([policy]));
      expect(seen).toBe(']');
    }
  });

  it('exits 1 naming BATON_CPU_SCHEDULING when its value is not a policy it knows, before running CMD', () => {
    const result = shim([String(process.pid), 'sh', '-c', 'echo ran'], { BATON_CPU_SCHEDULING: 'fifo' });
    expect(result).toMatchObject({ status: 1, stdout: '' });
    expect(result.stderr).toBe("baton-exec: BATON_CPU_SCHEDULING must be other, batch or idle, got 'fifo'\n");
  });

  it('exits 2 on bad usage', () => {
    expect(shim([]).status).toBe(2);
    expect(shim(['1']).status).toBe(2);
    const result = shim(['12abc', 'true']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("'12abc'");
  });

  it('kills CMD when the parent dies (PR_SET_PDEATHSIG survives exec)', async () => {
    const parent = track(
      spawn('sh', ['-c', '"$0" $$ sleep 60 & echo $!; wait', execShimPath], { stdio: ['ignore', 'pipe', 'inherit'] }),
    );
    const pid = Number(await nextLine(lines(parent)));
    killLater(pid);
    // Once sleep runs, the shim has armed the signal and passed its parent check.
    await until(() => readComm(pid) === 'sleep', 5000, `pid ${pid} to exec sleep`);
    parent.kill('SIGKILL');
    await until(() => !alive(pid), 2000, `pid ${pid} to die with its parent`);
  }, 20_000);
});

function readComm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
