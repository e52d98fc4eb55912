import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { formatAddress } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { ENV, LISTEN_FDS_START, type InheritedListener } from '../../shared/launch-env.ts';
import { PROTOCOL_VERSION } from '../../shared/protocol.ts';
import type { Config } from '../config/config.ts';
import type { Listener } from '../sockets/fd-store.ts';
import { controlSocketPath } from '../os/paths.ts';

/** Where Debian puts jemalloc (`allocator: jemalloc`). */
export const JEMALLOC_PATHS = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2'];

/** What worker `worker` of generation `id` finds in its environment: the supervisor's own, the config's, and the launch contract (docs/protocol.md). */
export function generationEnv(config: Pick<Config, 'name' | 'controlSocket' | 'env' | 'workers'>, listeners: Pick<Listener, 'name' | 'bound'>[], id: number, worker = 0): Record<string, string> {
  const inherited: InheritedListener[] = listeners.map((l, i) => ({
    fd: LISTEN_FDS_START + i,
    name: l.name,
    address: formatAddress(l.bound),
  }));
  return {
    // Node's compile cache, in Baton's private runtime directory: from the second generation on,
    // a release's modules load already compiled, which roughly halves a Node generation's start.
    NODE_COMPILE_CACHE: path.join(path.dirname(controlSocketPath(config.name, config.controlSocket)), 'compile-cache'),
    ...filteredEnv(process.env),
    ...config.env,
    [ENV.listenFds]: String(listeners.length),
    [ENV.listenFdNames]: listeners.map((l) => l.name).join(':'),
    [ENV.listeners]: JSON.stringify(inherited),
    [ENV.generation]: String(id),
    [ENV.worker]: String(worker),
    [ENV.workers]: String(config.workers ?? 1),
    [ENV.instance]: config.name,
    [ENV.protocol]: String(PROTOCOL_VERSION),
  };
}

/** A Unix socket path fits sun_path's 108 bytes with its NUL. */
const SUN_PATH_MAX = 107;

/**
 * Where generation `id`'s NOTIFY_SOCKET is bound: in the private runtime directory beside the
 * control socket. Too long a path is an error for `readiness: notify`, which cannot work without
 * it, and otherwise a warning and no NOTIFY_SOCKET.
 */
export function notifySocketPath(config: Config, id: number, log: Logger, worker = 0): string | undefined {
  const file = path.join(path.dirname(controlSocketPath(config.name, config.controlSocket)), 'notify', `${config.name}-${id}${worker > 0 ? `-${worker}` : ''}.sock`);
  const length = Buffer.byteLength(file);
  if (length <= SUN_PATH_MAX) return file;
  const why = `its path ${file} is ${length} bytes, and a Unix socket path holds at most ${SUN_PATH_MAX}: set BATON_RUNTIME_DIR or control-socket to a shorter directory`;
  if (config.readiness.mode === 'notify') throw new BatonError('ERR_CONFIG', `readiness: notify needs a NOTIFY_SOCKET, but ${why}`);
  log.warn(`generation ${id} gets no NOTIFY_SOCKET: ${why}`);
  return undefined;
}

/** LD_PRELOAD of jemalloc when the config asks for it and it is installed. */
export function allocatorEnv(config: Config, log: Logger): Record<string, string> {
  if (config.memory?.allocator !== 'jemalloc') return {};
  const lib = JEMALLOC_PATHS.find((p) => fs.existsSync(p));
  if (!lib) {
    log.warn({ tried: JEMALLOC_PATHS }, 'allocator: jemalloc asked for but libjemalloc is not installed (apt-get install libjemalloc2): using glibc malloc');
    return {};
  }
  return { LD_PRELOAD: [lib, config.env.LD_PRELOAD ?? process.env.LD_PRELOAD].filter(Boolean).join(':') };
}

/** The supervisor's environment minus what describes the supervisor's own sockets and channel. */
function filteredEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || /^(LISTEN_|NODE_CHANNEL_|BATON_|NOTIFY_SOCKET$|WATCHDOG_)/.test(k)) continue;
    out[k] = v;
  }
  return out;
}
