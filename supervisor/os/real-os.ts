/**
 * The Os seam's real implementation: processes (generation-process.ts), listening sockets, probes
 * and the process tree, as the supervisor's state machines use them.
 */
import fs from 'node:fs';
import type { Os } from './os.ts';
import { httpProbe } from '../readiness/http-probe.ts';
import { tcpProbe } from '../readiness/tcp-probe.ts';
import { closeSocket, listenSocket } from './listen-socket.ts';
import { strays } from './socket-holders.ts';
import { descendants } from './proc-tree.ts';
import { clearStandbys, listStandbys, liveReapers, reaperOf, spawnProcess } from './generation-process.ts';

/** The operating system as the supervisor uses it: real processes, real sockets. */
export const realOs: Os = {
  realpath(p) {
    try {
      return fs.realpathSync(p);
    } catch {
      return undefined;
    }
  },
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  spawn: spawnProcess,
  dispose: clearStandbys,
  standbys: listStandbys,
  listen: listenSocket,
  httpProbe,
  tcpProbe: (address, pid) => tcpProbe(address, () => [pid, ...descendants(reaperOf(pid))]),
  strays: (fds) => strays(fds, liveReapers()),
  close: closeSocket,
};

