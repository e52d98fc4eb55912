/**
 * A generation's process as the supervisor starts it: through the exec shim (baton-exec, its
 * reaper), with its socketpair for descriptors, its IPC channel and its output piped — and the
 * standby pool that boots the next one ahead. Apart from real-os.ts and light on imports, so
 * `baton dev` can boot its first generation's process before the supervisor's modules load.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ENV } from '../../shared/launch-env.ts';
import { packageRoot } from '../../shared/package-root.ts';
import { closeFd, execShimPath, sendFds, socketPair } from '../../shared/native/native.ts';
import type { StandbyMessage, SupervisorMessage } from '../../shared/protocol.ts';
import { NotifySocket } from '../systemd/notify-socket.ts';
import type { ChildPort, ProcessExit, SpawnSpec } from './os.ts';
import { forwardLines } from './forward-lines.ts';
import { isAccepting, running } from './proc-tree.ts';
import { STANDBY_WAKE, StandbyPool, shapeEnv, standbyArgs, type StandbyPort } from './standby-pool.ts';

/** Lines of a generation's stderr kept for failure reports. */
const STDERR_TAIL = 50;
/** How long to wait, after a process has exited, for its stderr to be read to the end. */
const STDERR_GRACE_MS = 250;
/**
 * How long what a generation started may outlive it after SIGTERM before the generation's reaper
 * (baton-exec --reap) kills it: short, because a crashed generation's restart waits for it.
 */
export const DESCENDANT_GRACE_MS = 1000;

/** Each live generation's command pid → the pid of its reaper, the shim every descendant re-parents to. */
const reapers = new Map<number, number>();

/** The reaper of the generation whose command runs as `pid` (the root of all it started), else `pid` itself. */
export function reaperOf(pid: number): number {
  return reapers.get(pid) ?? pid;
}

/** The pids of every live generation's reaper. */
export function liveReapers(): number[] {
  return [...reapers.values()];
}

/** A generation's process for `spec`, started now (a standby when `spec.standby` asks for one and the pool has it). */
export function spawnProcess(spec: SpawnSpec): ChildPort {
  return spec.standby ? standbys.spawn(spec) : spawnGeneration(spec);
}

/** Kills every standby. */
export function clearStandbys(): void {
  standbys.clear();
}

/** Each standby's pid, worker slot, and whether it waits. */
export function listStandbys(): ReturnType<StandbyPool['list']> {
  return standbys.list();
}

function spawnGeneration(spec: SpawnSpec): StandbyPort {
  // Everything opened for the child is closed again should a later step throw (a full descriptor
  // table, a bad argument): a failed spawn must not leak a socketpair or a notify socket per try.
  const opened: number[] = [];
  let notify: NotifySocket | undefined;
  let parentEnd: number, childEnd: number, reaperEnd: number, shimEnd: number;
  let child: ReturnType<typeof spawn>;
  const channelFd = 3 + spec.listenFds.length;
  const controlFd = channelFd + 2;
  try {
    notify = spec.notifySocket !== undefined ? new NotifySocket(spec.notifySocket) : undefined;
    [parentEnd, childEnd] = socketPair();
    opened.push(parentEnd, childEnd);
    // The reaper's control channel: it reports the command's pid, hears 'K' (kill everything), and
    // takes end of file as the supervisor's death.
    [reaperEnd, shimEnd] = socketPair();
    opened.push(reaperEnd, shimEnd);
    const args = ['--reap', String(controlFd), String(DESCENDANT_GRACE_MS), String(process.pid), spec.command, ...spec.args];
    child = spawn(execShimPath, args, {
      cwd: spec.cwd,
      env: { ...spec.env, [ENV.fdChannel]: String(channelFd), ...(notify ? { [ENV.notifySocket]: notify.path } : {}) },
      stdio: ['ignore', spec.onLine ? 'pipe' : 'inherit', 'pipe', ...spec.listenFds, childEnd, 'ipc', shimEnd],
      // Its own session: a terminal's Ctrl-C reaches only the supervisor, which drains in order.
      detached: true,
    });
  } catch (err) {
    for (const fd of opened) closeFd(fd);
    notify?.close();
    throw err;
  }
  closeFd(childEnd);
  closeFd(shimEnd);
  const reaperPid = child.pid ?? 0;
  // The generation is the command, not its reaper: LISTEN_PID, status, memory and signals name it.
  const pid = reaperPid > 0 ? (commandPid(reaperEnd) ?? reaperPid) : 0;
  if (reaperPid > 0) reapers.set(pid, reaperPid);

  // A standby takes its generation's sink when adopted; the pipes were chosen at spawn. One woken
  // before that (hold()) runs the app: what it says meanwhile is held, and delivered on adoption.
  let onLine = spec.onLine;
  let heldLines: [stream: 'stdout' | 'stderr', line: string][] | undefined;
  let heldMessages: unknown[] | undefined;
  const line = (stream: 'stdout' | 'stderr', text: string): void => {
    if (heldLines) heldLines.push([stream, text]);
    else onLine?.(stream, text);
  };
  const messageListeners: ((message: unknown) => void)[] = [];
  child.on('message', (m: unknown) => {
    if (heldMessages) heldMessages.push(m);
    else for (const l of messageListeners) l(m);
  });
  if (onLine) forwardLines(child.stdout, (text) => line('stdout', text));
  const tail: string[] = [];
  let partial = '';
  let stderrEnded = false;
  child.stderr?.on('data', (chunk: Buffer) => {
    if (!onLine) process.stderr.write(chunk);
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      line('stderr', text);
      if (text.length > 0) tail.push(text);
    }
    tail.splice(0, Math.max(0, tail.length - STDERR_TAIL));
  });
  const stderrDone = new Promise<void>((resolve) => {
    child.stderr?.on('close', () => {
      stderrEnded = true;
      if (partial.length > 0) line('stderr', partial);
      resolve();
    });
  });

  const exitListeners: ((exit: ProcessExit) => void)[] = [];
  let exited = false;
  const finish = (exit: ProcessExit): void => {
    if (exited) return;
    exited = true;
    reapers.delete(pid);
    closeFd(parentEnd);
    closeFd(reaperEnd);
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
    pid,
    send(message: SupervisorMessage | StandbyMessage) {
      if (!child.connected) return false;
      // A failed write means the generation is exiting; its exit is reported separately.
      child.send(message, () => {});
      return true;
    },
    sendFds(fds, payload) {
      sendFds(parentEnd, fds, Buffer.from(payload));
    },
    kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // The reaper forwards what it can catch; SIGKILL it cannot, so it is asked to deal it to the whole tree.
      if (signal === 'SIGKILL' && reaperPid !== pid) {
        try {
          fs.writeSync(reaperEnd, 'K');
          return;
        } catch {
          // the reaper is gone or wedged: kill it, and the command with it (PR_SET_PDEATHSIG)
        }
      }
      child.kill(signal);
    },
    onMessage(listener) {
      messageListeners.push(listener);
    },
    onExit(listener) {
      exitListeners.push(listener);
    },
    stderrTail: () => [...tail, ...(partial ? [partial] : [])],
    hold() {
      heldLines ??= [];
      heldMessages ??= [];
    },
    adopt(adopted) {
      // Killed a moment ago, its exit not yet read: a fresh process does better than a failed reload.
      if (exited || !running(pid)) throw new Error(`standby pid ${pid} has exited`);
      onLine = adopted.onLine;
      if (adopted.notifySocket !== undefined && !exited) notify = new NotifySocket(adopted.notifySocket);
      const lines = heldLines ?? [];
      heldLines = undefined;
      for (const [stream, text] of lines) onLine?.(stream, text);
      // Its adopter attaches its listeners once adopt() returns, in this same turn: the messages go to
      // them after it; any that arrive before then queue behind, still held.
      if (heldMessages) {
        queueMicrotask(() => {
          const messages = heldMessages ?? [];
          heldMessages = undefined;
          for (const m of messages) for (const l of messageListeners) l(m);
        });
      }
    },
    // The reaper is the root: an orphan that re-parented to it is still the generation's.
    isAccepting: (fds) => isAccepting(reaperPid, fds),
    readNotifications: () => notify?.read(reaperPid) ?? [],
  };
}

/**
 * The command's pid as the reaper reports it right after its fork. Read blocking, as libuv's spawn
 * itself waits for the exec: the reaper writes it before anything else; end of file (it exited
 * first, e.g. its parent check failed) leaves the reaper's own pid.
 */
function commandPid(fd: number): number | undefined {
  const buf = Buffer.alloc(32);
  try {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    const pid = Number(buf.toString('utf8', 0, n).trim());
    return n > 0 && Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Each standby, started by the exec shim like a generation (so its reaper, LISTEN_* and pid are the same), and identified as the pool asks. */
const standbys = new StandbyPool({
  spawn: spawnGeneration,
  boot: ({ notifySocket: _unbound, onLine, ...spec }, wake) =>
    spawnGeneration({
      ...spec,
      args: standbyArgs(spec.args, standbyUrl()),
      env: { ...shapeEnv(spec.env), ...(wake ? { [STANDBY_WAKE]: JSON.stringify(wake) } : {}) },
      ...(onLine ? { onLine: () => {} } : {}),
    }),
  identity(fd) {
    try {
      const st = fs.fstatSync(fd);
      return `${st.dev}:${st.ino}`;
    } catch {
      return 'closed';
    }
  },
  preloadStamp: () => [...STANDBY_FILES.map((f) => new URL(f, standbyUrl())), path.join(packageRoot(), 'package.json')].map(mtimeOf).join(','),
  timers: { setTimeout: (fn, ms) => setTimeout(fn, ms).unref() },
});

/** Boots the process `spec` would spawn as a standby now, for the first spawn of its shape to take (StandbyPool.preboot). */
export function prebootStandby(spec: SpawnSpec): void {
  standbys.preboot(spec);
}

/** What the standby preload loads of Baton: an upgrade of any (a new release installed) boots standbys afresh. */
const STANDBY_FILES = ['./standby', './index', './sdk'].map((f) => f + path.extname(import.meta.url));

function standbyUrl(): string {
  // .ts in a checkout, .js in the compiled dist/ of an install: the extension this module has.
  return new URL(`../../child/standby${path.extname(import.meta.url)}`, import.meta.url).href;
}

function mtimeOf(url: URL | string): string {
  try {
    return String(fs.statSync(url).mtimeMs);
  } catch {
    return '-';
  }
}
