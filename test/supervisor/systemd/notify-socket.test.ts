import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sdNotify } from '../../../shared/native/native.ts';
import { NotifySocket } from '../../../supervisor/systemd/notify-socket.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-notify-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const open: NotifySocket[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function bind(name: string): NotifySocket {
  const socket = new NotifySocket(path.join(dir, 'notify', name));
  open.push(socket);
  return socket;
}

/** A python3 that sends one datagram per line it reads on stdin and answers 'sent'. */
function sender(socketPath: string): { pid: number; send(message: string): Promise<void> } {
  const script = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for line in sys.stdin:
    s.sendto(line.strip().encode(), sys.argv[1])
    print('sent', flush=True)
`;
  const child = spawn('python3', ['-c', script, socketPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  return {
    pid: child.pid as number,
    async send(message) {
      child.stdin?.write(`${message}\n`);
      expect((await lines.next()).value).toBe('sent');
    },
  };
}

describe('NotifySocket', () => {
  it('binds 0600 in a 0700 directory, and close() removes the file', () => {
    const socket = bind('a-1.sock');
    expect(fs.statSync(socket.path).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(socket.path)).mode & 0o777).toBe(0o700);
    socket.close();
    expect(fs.existsSync(socket.path)).toBe(false);
  });

  it('keeps datagrams from the root and its descendants, and drops those from outside the tree', async () => {
    const socket = bind('a-2.sock');
    const python = sender(socket.path);
    await python.send('STATUS=from a child');
    expect(socket.read(python.pid)).toEqual([{ payload: 'STATUS=from a child', pid: python.pid }]);
    await python.send('READY=1');
    // python3 descends from this process: it is in the tree rooted here.
    expect(socket.read(process.pid)).toEqual([{ payload: 'READY=1', pid: python.pid }]);
    await python.send('READY=1');
    const unrelated = process.ppid;
    expect(socket.read(unrelated)).toEqual([]);
    expect(socket.read(python.pid)).toEqual([]);
  }, 20_000);

  it('replaces a stale file at its path, and reads nothing once closed', () => {
    fs.mkdirSync(path.join(dir, 'notify'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'notify', 'a-3.sock'), 'left by a killed supervisor');
    const socket = bind('a-3.sock');
    sdNotify(socket.path, 'READY=1');
    socket.close();
    expect(socket.read(process.pid)).toEqual([]);
  });

  it('refuses a path longer than a Unix socket address with ERR_CONFIG naming it', () => {
    const long = `${'x'.repeat(120)}.sock`;
    expect(() => bind(long)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringContaining('ENAMETOOLONG') }));
  });
});
