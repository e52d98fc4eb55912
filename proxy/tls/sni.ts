/**
 * Certificate selection by SNI: an exact name first, then a wildcard (`*.example.com` covers one
 * label, as RFC 6125 says), then the default certificate.
 */
import type tls from 'node:tls';

export interface SniEntry {
  /** Lower-cased names, exact or `*.suffix`. */
  names: readonly string[];
  context: tls.SecureContext;
}

export type SniMatch = 'exact' | 'wildcard' | 'default';

export class SniSelector {
  private readonly exact = new Map<string, tls.SecureContext>();
  private readonly wildcard = new Map<string, tls.SecureContext>();
  readonly defaultContext: tls.SecureContext;

  /** The first entry naming a host wins; `defaultIndex` answers everything else. */
  constructor(entries: readonly SniEntry[], defaultIndex: number) {
    for (const e of entries) {
      for (const name of e.names) {
        if (name.startsWith('*.')) {
          if (!this.wildcard.has(name.slice(2))) this.wildcard.set(name.slice(2), e.context);
        } else if (!this.exact.has(name)) this.exact.set(name, e.context);
      }
    }
    this.defaultContext = (entries[defaultIndex] as SniEntry).context;
  }

  /** The context for `servername` (from the ClientHello) and how it was matched. */
  select(servername: string): { context: tls.SecureContext; match: SniMatch } {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = this.exact.get(name);
    if (exact) return { context: exact, match: 'exact' };
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = this.wildcard.get(name.slice(dot + 1));
      if (wild) return { context: wild, match: 'wildcard' };
    }
    return { context: this.defaultContext, match: 'default' };
  }
}
