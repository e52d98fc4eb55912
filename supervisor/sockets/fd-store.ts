import { formatAddress, isLocal, parseAddress, type Address } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import type { ListenerConfig } from '../config/config.ts';
import type { InheritedSocket, SocketOrigin } from './inherited-sockets.ts';
import type { SocketOps } from '../os/os.ts';

/** A listening socket the store holds. */
export interface Listener {
  name: string;
  /** Canonical address as asked for (port 0 stays 0): the store's key. */
  key: string;
  /** Where the socket is actually bound. */
  bound: Address;
  fd: number;
  backlog: number;
  mode?: number;
  /** Absent when this supervisor bound it; `systemd` (a socket unit's) is never closed or unlinked by Baton. */
  origin?: SocketOrigin;
}

export type RuntimePolicy = 'loopback' | 'any' | 'none';

/**
 * Holds the listening sockets. Generations come and go; the sockets stay, so a connection that
 * arrives between two generations waits in the kernel's backlog instead of being refused.
 * A socket is closed only when the configuration no longer names it and no live generation uses it.
 */
export class FdStore {
  private readonly sockets: SocketOps;
  private readonly listeners = new Map<string, Listener>();
  private readonly users = new Map<number, Set<string>>();
  private pinned = new Set<string>();
  /** Adopted sockets no configured listener has taken yet: a listener may take one by name. */
  private readonly unclaimed = new Set<string>();
  /** Config key → key of the adopted socket a listener took by name (their addresses differ, e.g. port 0). */
  private readonly aliases = new Map<string, string>();
  private readonly onClose: (listener: Listener) => void;

  /** `onClose` hears of every socket the store closes (systemd's descriptor store must drop it too). */
  constructor(sockets: SocketOps, onClose: (listener: Listener) => void = () => {}) {
    this.sockets = sockets;
    this.onClose = onClose;
  }

  /**
   * Holds sockets this process did not bind. A configured listener takes the one held at its
   * address, else an adopted one with its name. A socket unit's sockets that no listener takes
   * still go to every generation after the configured ones, as systemd would pass them; other
   * adopted sockets no listener takes are closed at the first `pin`.
   */
  adopt(sockets: InheritedSocket[]): Listener[] {
    const adopted = sockets.map((s) => {
      const listener: Listener = { name: s.name, key: s.key ?? formatAddress(s.bound), bound: s.bound, fd: s.fd, backlog: 0, origin: s.origin };
      this.listeners.set(listener.key, listener);
      this.unclaimed.add(listener.key);
      return listener;
    });
    this.pinned = new Set([...this.pinned, ...adopted.map((l) => l.key)]);
    return adopted;
  }

  /**
   * Returns the listeners `configs` names, in order, binding those the store does not hold yet. A
   * held socket keeps its fd under the name the config now gives it. On a bind failure nothing
   * newly bound is kept and an ERR_LISTENER says which.
   */
  provide(configs: ListenerConfig[]): Listener[] {
    const fresh: Listener[] = [];
    const taken = new Set<string>();
    try {
      const result = configs.map((c) => {
        const alias = this.aliases.get(c.key);
        const existing = this.listeners.get(c.key) ?? (alias !== undefined ? this.listeners.get(alias) : undefined) ?? this.adoptedNamed(c.name, taken);
        if (existing) {
          if (existing.key !== c.key) this.aliases.set(c.key, existing.key);
          taken.add(existing.key);
          return existing.name === c.name ? existing : { ...existing, name: c.name };
        }
        const listener = this.bind(c.name, c.address, c.backlog, c.mode, c.reusePort);
        fresh.push(listener);
        return listener;
      });
      for (const l of fresh) this.listeners.set(l.key, l);
      for (const l of this.listeners.values()) if (l.origin === 'systemd' && !taken.has(l.key)) result.push(l);
      return result;
    } catch (err) {
      for (const l of fresh) this.sockets.close(l.fd, l.bound);
      throw err;
    }
  }

  /**
   * Declares the configuration's listeners (now serving: their names are the store's names);
   * others close once their last user is released.
   */
  pin(listeners: Listener[]): void {
    for (const l of listeners) if (this.listeners.has(l.key)) this.listeners.set(l.key, l);
    this.pinned = new Set(listeners.map((l) => l.key));
    for (const key of this.pinned) this.unclaimed.delete(key);
    this.collect();
  }

  /**
   * The listeners of each of `workers` slots: slot 0 has `base` (what provide returned); a
   * listener configured with `reusePort` has, in each further slot, a socket of its own bound
   * with SO_REUSEPORT to the same port (key `<key>#<slot>`), held like any other, so the kernel
   * spreads connections across the slots and queues a restarting slot's. Others are shared.
   */
  slots(base: Listener[], configs: ListenerConfig[], workers: number): Listener[][] {
    const reuse = new Set(configs.filter((c) => c.reusePort).map((c) => c.name));
    const fresh: Listener[] = [];
    try {
      const slots = [base];
      for (let slot = 1; slot < workers; slot++) {
        slots.push(
          base.map((l) => {
            if (!reuse.has(l.name) || l.bound.kind !== 'tcp') return l;
            const key = `${l.key}#${slot}`;
            const held = this.listeners.get(key);
            if (held) return held;
            const listener = { ...this.bind(l.name, l.bound, l.backlog || 511, undefined, true), key };
            fresh.push(listener);
            return listener;
          }),
        );
      }
      for (const l of fresh) this.listeners.set(l.key, l);
      return slots;
    } catch (err) {
      for (const l of fresh) this.sockets.close(l.fd, l.bound);
      if ((err as { cause?: { code?: string } }).cause?.code === 'EADDRINUSE') {
        throw new BatonError(
          'ERR_LISTENER',
          `${(err as Error).message}\n(balance: reuseport needs every socket on the port bound with SO_REUSEPORT; one bound without it — ` +
            'by workers: 1, balance: shared or a socket unit — holds it: restart Baton, or keep balance: shared for this listener)',
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Records that `generation` uses these listeners until `release(generation)`. */
  retain(generation: number, listeners: Listener[]): void {
    const keys = this.users.get(generation) ?? new Set<string>();
    for (const l of listeners) keys.add(l.key);
    this.users.set(generation, keys);
  }

  /** The generation has exited: listeners nobody needs any more are closed. */
  release(generation: number): void {
    this.users.delete(generation);
    this.collect();
  }

  /** A listener a generation asks for at run time: the held one, or a new bind if policy allows. */
  request(text: string, policy: RuntimePolicy): Listener {
    let address: Address;
    try {
      address = parseAddress(text);
    } catch (err) {
      throw new BatonError('ERR_LISTENER', (err as Error).message, { cause: err });
    }
    const key = formatAddress(address);
    const held = this.listeners.get(key) ?? this.findBound(key);
    if (held) return held;
    if (policy === 'none' || (policy === 'loopback' && !isLocal(address))) {
      throw new BatonError(
        'ERR_LISTENER',
        `refusing to bind ${key} at a generation's request: runtime-listeners is '${policy}'; add it to listeners in the config`,
      );
    }
    const listener = this.bind(key, address, 511);
    this.listeners.set(key, listener);
    return listener;
  }

  all(): Listener[] {
    return [...this.listeners.values()];
  }

  /** Closes every socket Baton owns (the supervisor is stopping); a socket unit's stay as systemd left them. */
  closeAll(): void {
    for (const l of this.listeners.values()) this.close(l);
    this.listeners.clear();
  }

  /**
   * The supervisor has handed over to its successor, which holds its own descriptors for the same
   * sockets: forget them all, closing nothing (no Unix socket file may be unlinked); this
   * process's descriptors go when it exits.
   */
  handOver(): void {
    this.listeners.clear();
    this.users.clear();
    this.pinned.clear();
    this.unclaimed.clear();
    this.aliases.clear();
  }

  private close(l: Listener): void {
    if (l.origin === 'systemd') return;
    this.sockets.close(l.fd, l.bound);
    this.onClose(l);
  }

  private adoptedNamed(name: string, taken: Set<string>): Listener | undefined {
    for (const key of this.unclaimed) {
      const l = this.listeners.get(key);
      if (l && l.name === name && !taken.has(key)) return l;
    }
    return undefined;
  }

  private findBound(key: string): Listener | undefined {
    for (const l of this.listeners.values()) if (formatAddress(l.bound) === key) return l;
    return undefined;
  }

  private bind(name: string, address: Address, backlog: number, mode?: number, reusePort?: boolean): Listener {
    const key = formatAddress(address);
    try {
      const { fd, bound } = reusePort ? this.sockets.listen(address, backlog, mode, true) : this.sockets.listen(address, backlog, mode);
      return { name, key, bound, fd, backlog, ...(mode !== undefined ? { mode } : {}) };
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'unknown error';
      throw new BatonError('ERR_LISTENER', `cannot listen on ${key} (listener '${name}'): ${code}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  private collect(): void {
    const used = new Set(this.pinned);
    for (const keys of this.users.values()) for (const k of keys) used.add(k);
    for (const [key, l] of this.listeners) {
      if (used.has(key) || l.origin === 'systemd') continue;
      this.close(l);
      this.listeners.delete(key);
      for (const [from, to] of this.aliases) if (to === key) this.aliases.delete(from);
    }
  }
}
