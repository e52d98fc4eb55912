import path from 'node:path';
import { formatAddress, isWildcard, parseAddress, type Address } from '../../shared/address.ts';
import type { InheritedListener } from '../../shared/launch-env.ts';

/** What a program asked to listen on, as `server.listen` arguments describe it. */
export interface ListenTarget {
  name?: string;
  /** Canonical address (formatAddress). */
  address?: string;
}

/**
 * Finds the inherited listener for `target`: by name, by exact address, or — for a program that
 * says only a port (`listen(3000)`), which Node reads as every interface — by port.
 */
export function matchInherited(listeners: InheritedListener[], target: ListenTarget): InheritedListener | undefined {
  if (target.name !== undefined) {
    const byName = listeners.find((l) => l.name === target.name);
    if (byName) return byName;
  }
  if (target.address === undefined) return undefined;
  const exact = listeners.find((l) => l.address === target.address);
  if (exact) return exact;
  let wanted: Address;
  try {
    wanted = parseAddress(target.address);
  } catch {
    return undefined;
  }
  if (wanted.kind !== 'tcp' || wanted.port === 0 || !isWildcard(wanted)) return undefined;
  return listeners.find((l) => {
    if (!l.address) return false;
    const have = parseAddress(l.address);
    return have.kind === 'tcp' && have.port === wanted.port;
  });
}

/** Canonical address for `server.listen` arguments, or undefined when they name none we handle. */
export function targetAddress(options: { port?: unknown; host?: unknown; path?: unknown }): string | undefined {
  // Node resolves a relative socket path against the working directory; so must the match.
  if (typeof options.path === 'string') return formatAddress({ kind: 'unix', path: path.resolve(options.path) });
  const port = typeof options.port === 'string' && /^\d+$/.test(options.port) ? Number(options.port) : options.port;
  if (typeof port !== 'number' || !Number.isInteger(port)) return undefined;
  const host = typeof options.host === 'string' && options.host !== '' ? options.host : '::';
  if (host === 'localhost') return formatAddress({ kind: 'tcp', host: '127.0.0.1', port });
  try {
    return formatAddress(parseAddress(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`));
  } catch {
    return undefined;
  }
}
