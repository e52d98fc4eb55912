import net from 'node:net';
import path from 'node:path';

/** A listening address: TCP host and port, or a Unix socket path. */
export type Address =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

/**
 * Parses `127.0.0.1:8080`, `[::1]:8080`, `8080` (loopback), `unix:/run/app.sock` or an absolute path.
 * Throws a TypeError saying what was expected.
 */
export function parseAddress(text: string): Address {
  const input = text.trim();
  if (input.startsWith('unix:')) return unixAddress(input.slice('unix:'.length), text);
  if (input.startsWith('/')) return unixAddress(input, text);
  if (/^\d+$/.test(input)) return { kind: 'tcp', host: '127.0.0.1', port: parsePort(input, text) };
  const bracketed = /^\[([^\]%]+)\]:(\d+)$/.exec(input);
  if (bracketed) {
    const host = bracketed[1] as string;
    if (net.isIPv6(host)) return { kind: 'tcp', host: normalizeHost(host), port: parsePort(bracketed[2] as string, text) };
  }
  const plain = /^([^:[\]]+):(\d+)$/.exec(input);
  if (plain) {
    const host = plain[1] as string;
    if (host === 'localhost') return { kind: 'tcp', host: '127.0.0.1', port: parsePort(plain[2] as string, text) };
    if (net.isIPv4(host)) return { kind: 'tcp', host, port: parsePort(plain[2] as string, text) };
  }
  throw new TypeError(
    `invalid address '${text}': expected HOST:PORT with a numeric IPv4 host, [IPv6]:PORT, a port alone, unix:/path or /path`,
  );
}

function unixAddress(p: string, text: string): Address {
  if (!path.isAbsolute(p)) throw new TypeError(`invalid address '${text}': a Unix socket path must be absolute`);
  return { kind: 'unix', path: path.normalize(p) };
}

function parsePort(digits: string, text: string): number {
  const port = Number(digits);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`invalid address '${text}': port must be 0-65535`);
  }
  return port;
}

function normalizeHost(host: string): string {
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/** The canonical text of an address: equal addresses give equal strings. */
export function formatAddress(address: Address): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** True for 127.0.0.0/8, ::1 and Unix paths: addresses nobody beyond this machine can reach. */
export function isLocal(address: Address): boolean {
  if (address.kind === 'unix') return true;
  return address.host === '::1' || /^127\./.test(address.host);
}

/** True for 0.0.0.0 and :: — "every interface". */
export function isWildcard(address: Address): boolean {
  return address.kind === 'tcp' && (address.host === '0.0.0.0' || address.host === '::');
}
