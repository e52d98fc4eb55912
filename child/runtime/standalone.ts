import { parseAddress } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import type { SharedValue } from '../../shared/shared-value.ts';
import type { Stats } from '../../shared/stats/index.ts';
import { privateSegments } from '../stats/stats-module.ts';
import type { GenerationInfo, ListenerRequest, ListenPlace, Runtime, RuntimeHooks, TicketKey } from './runtime.ts';

/** How long a standalone program drains on SIGTERM/SIGINT before it cuts connections. @default 10 s */
const STANDALONE_DRAIN_MS = 10_000;

/**
 * The runtime of a program started without Baton: listeners are bound normally, readiness and
 * connection reports go nowhere, and SIGTERM/SIGINT drain the servers before the process exits.
 */
export class StandaloneRuntime implements Runtime {
  private readonly drainMs: number;
  private readonly startedAt = Date.now();
  private mapped: Stats | undefined;
  private key: TicketKey | undefined;
  private hooks: RuntimeHooks | undefined;

  constructor(options: { drainMs?: number } = {}) {
    this.drainMs = options.drainMs ?? STANDALONE_DRAIN_MS;
  }

  info(): GenerationInfo {
    return { supervised: false, generation: 0, worker: 0, instance: '', startedAt: this.startedAt };
  }

  async resolve(request: ListenerRequest): Promise<ListenPlace> {
    if (request.address === undefined) {
      throw new BatonError(
        'ERR_NOT_SUPERVISED',
        `listener '${request.name}' has no address to bind without Baton: pass { name, address }`,
      );
    }
    const address = parseAddress(request.address);
    return address.kind === 'unix' ? { path: address.path } : { host: address.host, port: address.port };
  }

  stats(): Stats {
    this.mapped ??= privateStats();
    return this.mapped;
  }

  ready(): void {}

  async ticketKey(rotateEvery: number): Promise<TicketKey> {
    // Alone, this process is every generation there is: its own key, rotated on the same schedule.
    if (!this.key || Date.now() >= this.key.expiresAt - 1000) this.key = { key: process.getBuiltinModule('node:crypto').randomBytes(48), expiresAt: Date.now() + rotateEvery };
    return this.key;
  }

  async requestReload(): Promise<number> {
    throw new BatonError('ERR_NOT_SUPERVISED', 'cannot reload: this program was not started by Baton');
  }

  /** Alone, this process is its whole generation: the value is held at once. */
  async share(key: string, value: SharedValue): Promise<void> {
    this.hooks?.shared?.(key, value);
  }

  reportConnections(): void {}

  drained(): void {}

  start(hooks: RuntimeHooks): void {
    this.hooks = hooks;
    const stop = (): void => {
      hooks.drain();
      setTimeout(() => hooks.terminate(), this.drainMs).unref();
      process.once('SIGTERM', () => hooks.terminate());
      process.once('SIGINT', () => hooks.terminate());
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  }
}

/**
 * Stats nobody else reads: a segment of this process's own, unlinked as soon as it is mapped, so
 * the same API works without Baton and nothing is left in /dev/shm, even after a SIGKILL (one
 * between the two is removed by the next process's privateStats).
 */
export function privateStats(): Stats {
  return privateSegments().createPrivateSegment();
}
