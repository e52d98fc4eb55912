// The floor of any Node command that talks to a supervisor: a bare `node -e` that connects to a
// Unix socket and writes one line, timed from its spawn to the connection's arrival (what the
// supervisor's "request received" mark measures for `baton reload`), with its CPU and wall time.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { timedNode } from './baton.ts';

export interface BareClientSample {
  /** spawn → the bench's socket accepted the connection */
  reachMs: number;
  /** the process's CPU (user + system), start to exit */
  cpuMs: number;
  /** spawn → exit */
  wallMs: number;
}

const CLIENT = "require('net').connect(process.env.BENCH_BARE_SOCKET).end('POST /reload HTTP/1.1\\r\\n\\r\\n')";

/** A listener of the bench's own and a function that times one bare client against it; `close` removes both. */
export async function bareClient(): Promise<{ run: () => Promise<BareClientSample>; close: () => void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-bare-'));
  const socketPath = path.join(dir, 'bare.sock');
  const cpuFile = path.join(dir, 'cpu.txt');
  let arrived: ((at: number) => void) | undefined;
  const server = net.createServer((c) => {
    arrived?.(performance.now());
    c.on('error', () => {});
    c.resume();
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    async run() {
      const reached = new Promise<number>((resolve) => (arrived = resolve));
      const t0 = performance.now();
      const cpuMs = await timedNode(['-e', CLIENT], { BENCH_BARE_SOCKET: socketPath }, cpuFile);
      const wallMs = performance.now() - t0;
      return { reachMs: (await reached) - t0, cpuMs, wallMs };
    },
    close() {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
