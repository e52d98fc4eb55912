import { HANDOVER_VERSION } from '../../shared/protocol.ts';
import type { Address } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { LISTEN_FDS_START } from '../../shared/launch-env.ts';
import { setCloexec, sockName } from '../../shared/native/native.ts';

/**
 * Where a socket this supervisor did not bind came from: a systemd socket unit (used, never
 * closed or unlinked by Baton), systemd's descriptor store (Baton's own from before a restart),
 * or the supervisor that upgraded to this one.
 */
export type SocketOrigin = 'systemd' | 'fd-store' | 'predecessor';

/** A listening socket this supervisor did not bind. */
export interface InheritedSocket {
  fd: number;
  name: string;
  bound: Address;
  origin: SocketOrigin;
  /** The config key it was held under (a predecessor supervisor's hand-over). */
  key?: string;
}

/**
 * Names Baton gives the listeners it keeps in systemd's descriptor store, so that after a restart
 * they are told apart from a socket unit's (which Baton must never close).
 */
export const FD_STORE_PREFIX = 'baton.';

/** Variable through which an upgrading supervisor describes the sockets it passes from fd 3 on. */
export const UPGRADE_ENV = 'BATON_UPGRADE';

/** Bumped when UpgradeState changes incompatibly: a successor refuses a state it cannot read. */
export const UPGRADE_VERSION = HANDOVER_VERSION;

/** What a supervisor hands its successor besides the sockets themselves. */
export interface UpgradeState {
  version: number;
  /** Pid of the supervisor handing over. */
  from: number;
  /** The number the successor's first generation takes. */
  nextGeneration: number;
  /** `systemd` for a socket unit's socket, which the successor must not close either. */
  listeners: { name: string; key: string; origin: SocketOrigin }[];
  /** The service manager's variables (NOTIFY_SOCKET…) the predecessor took out of its environment. */
  serviceEnv: Record<string, string>;
}

/**
 * Takes the sockets passed to this process out of `env`: systemd's socket activation
 * (`LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_PID` naming this process) and a predecessor's
 * hand-over (`BATON_UPGRADE`). The variables are removed so no generation inherits them, and
 * the descriptors made close-on-exec so they reach generations only where Baton places them.
 */
export function takeInheritedSockets(env: NodeJS.ProcessEnv, pid = process.pid): { sockets: InheritedSocket[]; upgrade?: UpgradeState } {
  const upgradeText = env[UPGRADE_ENV];
  const count = env.LISTEN_FDS;
  const names = env.LISTEN_FDNAMES;
  const listenPid = env.LISTEN_PID;
  for (const key of [UPGRADE_ENV, 'LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID']) delete env[key];
  if (upgradeText !== undefined) {
    const upgrade = parseUpgrade(upgradeText);
    const sockets = upgrade.listeners.map((l, i): InheritedSocket => ({
      ...adopt(LISTEN_FDS_START + i, l.name, `${UPGRADE_ENV} listener ${i}`),
      origin: l.origin === 'systemd' ? 'systemd' : 'predecessor',
      key: l.key,
    }));
    return { sockets, upgrade };
  }
  if (count === undefined) return { sockets: [] };
  // sd_listen_fds(3): the variables are for the process LISTEN_PID names, not for its children.
  if (listenPid !== undefined && Number(listenPid) !== pid) return { sockets: [] };
  const n = Number(count);
  if (!Number.isInteger(n) || n < 0 || n > 1024) {
    throw new BatonError('ERR_LISTENER', `LISTEN_FDS must be a count of descriptors, got '${count}'`);
  }
  const fdNames = names === undefined || names === '' ? [] : names.split(':');
  const sockets: InheritedSocket[] = [];
  for (let i = 0; i < n; i++) {
    const given = fdNames[i] ?? 'unknown';
    const stored = given.startsWith(FD_STORE_PREFIX);
    const name = stored ? given.slice(FD_STORE_PREFIX.length) : given;
    sockets.push({ ...adopt(LISTEN_FDS_START + i, name, `LISTEN_FDS descriptor ${LISTEN_FDS_START + i} ('${given}')`), origin: stored ? 'fd-store' : 'systemd' });
  }
  return { sockets };
}

function adopt(fd: number, name: string, what: string): { fd: number; name: string; bound: Address } {
  let bound: Address;
  try {
    const s = sockName(fd);
    bound = s.family === 'unix' ? { kind: 'unix', path: s.address } : { kind: 'tcp', host: s.address, port: s.port };
    setCloexec(fd, true);
  } catch (err) {
    throw new BatonError('ERR_LISTENER', `${what} is not a usable listening socket: ${(err as Error).message}`, { cause: err });
  }
  return { fd, name, bound };
}

function parseUpgrade(text: string): UpgradeState {
  let state: UpgradeState;
  try {
    state = JSON.parse(text) as UpgradeState;
  } catch (err) {
    throw new BatonError('ERR_LISTENER', `${UPGRADE_ENV} is not the JSON a predecessor supervisor writes: ${(err as Error).message}`, { cause: err });
  }
  if (state.version !== UPGRADE_VERSION) {
    throw new BatonError('ERR_UPGRADE_FAILED', `${UPGRADE_ENV} is version ${state.version}; this Baton reads version ${UPGRADE_VERSION}: stop and start it instead`);
  }
  if (!Array.isArray(state.listeners) || !Number.isInteger(state.nextGeneration) || !Number.isInteger(state.from)) {
    throw new BatonError('ERR_LISTENER', `${UPGRADE_ENV} lacks from, nextGeneration or listeners: ${text.slice(0, 200)}`);
  }
  return state;
}
