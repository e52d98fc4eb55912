import { formatAddress, type Address } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';

/** One thing wrong with a configuration: where (the key's path) and what. */
export interface ConfigProblem {
  path: readonly PropertyKey[];
  message: string;
  /** The problem is the key itself (unknown), not its value. */
  key?: true;
  /** How to name the place when not by its path (readiness.http). */
  label?: string;
}

/** An invalid configuration: every problem found, each with its key; the message lists them as `  key: problem`. */
export class ConfigError extends BatonError {
  readonly where: string;
  readonly problems: ConfigProblem[];

  constructor(where: string, problems: ConfigProblem[]) {
    super('ERR_CONFIG', `invalid configuration in ${where}:\n${problems.map((p) => `  ${labelOf(p)}: ${p.message}`).join('\n')}`);
    this.where = where;
    this.problems = problems;
  }
}

/** `listeners[0].address`, or the problem's own label. */
export function labelOf(problem: ConfigProblem): string {
  if (problem.label) return problem.label;
  if (problem.path.length === 0) return '(top level)';
  return problem.path.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`)).join('');
}

/**
 * The earlier listener whose socket would take `address`'s port: a wildcard host covers every
 * address of its family (`::` binds both families, as Baton binds it), so binding both fails with
 * EADDRINUSE at start. Port 0 (any free port) overlaps nothing.
 */
export function overlappingListener(address: Address, earlier: { address: Address; key: string; name: string }[]): string | undefined {
  if (address.kind !== 'tcp' || address.port === 0) return undefined;
  const v4 = (host: string): boolean => !host.includes(':');
  const covers = (wide: string, other: string): boolean => (wide === '0.0.0.0' && v4(other)) || wide === '::';
  for (const e of earlier) {
    if (e.address.kind !== 'tcp' || e.address.port !== address.port || e.address.host === address.host) continue;
    const a = address.host;
    const b = e.address.host;
    if (covers(a, b) || covers(b, a)) {
      const wide = covers(a, b) ? formatAddress(address) : e.key;
      return `listener '${e.name}' (${e.key}): ${wide} takes port ${address.port} on every ${wide.startsWith('[') ? 'IPv4 and IPv6' : 'IPv4'} address, so binding both fails (EADDRINUSE); keep one`;
    }
  }
  return undefined;
}
