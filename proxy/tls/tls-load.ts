/**
 * Turns the `tls:` keys of a validated configuration into what the servers and pools are built
 * from: a secure context per certificate (made now, so OpenSSL's own objections are config
 * errors too), the SNI table, client-certificate CA, upstream connect options, and the files a
 * `watch: true` listener depends on. Problems and warnings name the key and the file.
 */
import { constants, createHash } from 'node:crypto';
import tls from 'node:tls';
import type { AppTlsConfig, DownstreamTlsConfig, Http2Config, UpstreamTlsConfig } from './tls-schema.ts';
import { fingerprint, loadPair, readCertificates, resolveFile, type CertificatePair, type Findings } from './certificates.ts';
import { SniSelector } from './sni.ts';

/** A TLS listener's material. */
export interface DownstreamTls {
  config: DownstreamTlsConfig;
  pairs: CertificatePair[];
  sni: SniSelector;
  /** Options for the server itself: the default certificate's, plus client auth and versions. */
  serverOptions: tls.TlsOptions;
  /** ALPN protocols offered ([] for none). */
  alpn: string[];
  /** Every file the material came from (certificates, keys, CA). */
  files: string[];
}

/** TLS options for a cluster's connections (undici's `connect`). */
export interface UpstreamTls {
  connect: tls.ConnectionOptions;
}

/** Everything TLS in a configuration. */
export interface TlsMaterial {
  app: AppTlsConfig;
  listeners: Map<string, DownstreamTls>;
  clusters: Map<string, UpstreamTls>;
  /** Files of `watch: true` listeners, and their digest when they were read. */
  watched: { files: string[]; digest: string };
  warnings: string[];
}

interface ListenerInput {
  name: string;
  protocol: 'http' | 'tcp';
  tls?: DownstreamTlsConfig;
  http2?: Http2Config;
}

/** Loads every listener's and cluster's TLS material; problems are pushed to `problems`. */
export function loadTls(
  app: AppTlsConfig,
  listeners: readonly ListenerInput[],
  clusters: readonly { name: string; tls?: UpstreamTlsConfig }[],
  configFile: string,
  problems: string[],
  now = Date.now(),
): TlsMaterial {
  const found: Findings = { problems, warnings: [] };
  const material: TlsMaterial = { app, listeners: new Map(), clusters: new Map(), watched: { files: [], digest: '' }, warnings: found.warnings };
  for (const l of listeners) {
    if (l.tls === undefined) {
      if (l.protocol === 'http' && l.http2?.enabled) problems.push(`app.listeners.${l.name}.http2: HTTP/2 needs tls on the listener (h2c is not supported)`);
      continue;
    }
    const d = loadDownstream(l, configFile, now, app.expiry_warning, found);
    if (!d) continue;
    material.listeners.set(l.name, d);
    if (l.tls.watch) material.watched.files.push(...d.files);
  }
  for (const c of clusters) {
    if (c.tls) {
      const u = loadUpstream(c.name, c.tls, configFile, now, app.expiry_warning, found);
      if (u) material.clusters.set(c.name, u);
    }
  }
  material.watched.files = [...new Set(material.watched.files)];
  material.watched.digest = fingerprint(material.watched.files);
  return material;
}

function loadDownstream(l: ListenerInput, configFile: string, now: number, warnWithin: number, found: Findings): DownstreamTls | undefined {
  const t = l.tls as DownstreamTlsConfig;
  const where = `app.listeners.${l.name}.tls`;
  const before = found.problems.length;
  let ca: Buffer | undefined;
  const files: string[] = [];
  if (t.client_auth) {
    const caFile = resolveFile(t.client_auth.ca, configFile);
    files.push(caFile);
    ca = readCertificates(caFile, `${where}.client_auth.ca`, 'CA file', found)?.pem;
  }
  if (l.protocol === 'http' && t.alpn !== undefined) found.problems.push(`${where}.alpn: an http listener offers h2 and http/1.1 by its http2 setting; alpn is for tcp listeners`);
  const h2 = l.protocol === 'http' && (l.http2?.enabled ?? true);
  const alpn = l.protocol === 'http' ? (h2 ? ['h2', 'http/1.1'] : ['http/1.1']) : (t.alpn ?? []);
  // The same for every generation, so sessions resume on the next one (OpenSSL checks it).
  const sessionIdContext = createHash('sha256').update(`baton-proxy:${l.name}`).digest('hex').slice(0, 32);
  const common: tls.SecureContextOptions = {
    minVersion: t.min_version,
    maxVersion: t.max_version,
    ...(t.ciphers !== undefined ? { ciphers: t.ciphers } : {}),
    ...(ca ? { ca } : {}),
    sessionIdContext,
    sessionTimeout: Math.max(1, Math.round(t.session_timeout / 1000)),
  };
  const pairs: CertificatePair[] = [];
  const entries: { names: string[]; context: tls.SecureContext }[] = [];
  t.certificates.forEach((c, i) => {
    const at = `${where}.certificates[${i}]`;
    const certFile = resolveFile(c.cert, configFile);
    const keyFile = resolveFile(c.key, configFile);
    files.push(certFile, keyFile);
    const pair = loadPair(certFile, keyFile, at, now, warnWithin, found);
    if (!pair) return;
    let context: tls.SecureContext;
    try {
      context = tls.createSecureContext({ ...common, cert: pair.certPem, key: pair.keyPem });
    } catch (err) {
      found.problems.push(`${at}: OpenSSL refuses ${certFile} with ${keyFile}: ${(err as Error).message}`);
      return;
    }
    const names = (c.server_names ?? pair.dnsNames).map((n) => n.toLowerCase());
    for (const n of c.server_names ?? []) {
      if (!coveredBy(n.toLowerCase(), pair.dnsNames)) found.warnings.push(`${at}.server_names: ${n} is not among the names of ${certFile} (${pair.dnsNames.join(', ') || 'none'}): clients will not trust it`);
    }
    pairs.push(pair);
    entries.push({ names, context });
  });
  if (found.problems.length > before) return undefined;
  const defaultIndex = Math.max(0, t.certificates.findIndex((c) => c.default));
  const main = pairs[defaultIndex] as CertificatePair;
  const serverOptions: tls.TlsOptions = {
    ...common,
    cert: main.certPem,
    key: main.keyPem,
    requestCert: t.client_auth !== undefined,
    rejectUnauthorized: false,
    handshakeTimeout: t.handshake_timeout,
    ...(alpn.length > 0 ? { ALPNProtocols: alpn } : {}),
  };
  if (!t.session_tickets) serverOptions.secureOptions = constants.SSL_OP_NO_TICKET;
  return { config: t, pairs, sni: new SniSelector(entries, defaultIndex), serverOptions, alpn, files };
}

/** True when `name` is one of `dnsNames` or matched by one of its wildcards. */
function coveredBy(name: string, dnsNames: readonly string[]): boolean {
  return dnsNames.some((d) => d === name || (d.startsWith('*.') && name.endsWith(d.slice(1)) && !name.slice(0, -(d.length - 1)).includes('.')));
}

function loadUpstream(cluster: string, t: UpstreamTlsConfig, configFile: string, now: number, warnWithin: number, found: Findings): UpstreamTls | undefined {
  const where = `app.clusters.${cluster}.tls`;
  const before = found.problems.length;
  const connect: tls.ConnectionOptions = { rejectUnauthorized: t.verify, minVersion: t.min_version, ALPNProtocols: ['http/1.1'] };
  if (t.ca !== undefined) {
    const pem = readCertificates(resolveFile(t.ca, configFile), `${where}.ca`, 'CA file', found)?.pem;
    if (pem) connect.ca = pem;
  }
  if (t.server_name !== undefined) connect.servername = t.server_name;
  if (t.cert !== undefined && t.key !== undefined) {
    const pair = loadPair(resolveFile(t.cert, configFile), resolveFile(t.key, configFile), where, now, warnWithin, found);
    if (pair) {
      connect.cert = pair.certPem;
      connect.key = pair.keyPem;
    }
  }
  return found.problems.length > before ? undefined : { connect };
}
