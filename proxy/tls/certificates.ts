/**
 * Reading and checking PEM files: a certificate chain and its key (readable, parseable, the key
 * matches the leaf, the leaf valid now; a warning when it expires soon or the chain is out of
 * order), and CA bundles. Every problem names the file and says what is wrong with it.
 */
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const DAY_MS = 86_400_000;

/** A certificate chain and key that passed every check. */
export interface CertificatePair {
  certFile: string;
  keyFile: string;
  certPem: Buffer;
  keyPem: Buffer;
  leaf: X509Certificate;
  /** Lower-cased DNS names of the leaf's subjectAltName (its CN when it has none). */
  dnsNames: string[];
  notAfter: Date;
}

/** What a check found: `problems` fail the configuration, `warnings` are logged. */
export interface Findings {
  problems: string[];
  warnings: string[];
}

/** `file` resolved against the config file's directory. */
export function resolveFile(file: string, configFile: string): string {
  return path.resolve(path.dirname(configFile), file);
}

function read(file: string, where: string, what: string, found: Findings): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    found.problems.push(`${where}: cannot read ${what} ${file}: ${e.code ?? e.message}`);
    return undefined;
  }
}

/** Every certificate in a PEM file, parsed; a problem (and undefined) when there is none or one is damaged. */
export function readCertificates(file: string, where: string, what: string, found: Findings): { pem: Buffer; certs: X509Certificate[] } | undefined {
  const pem = read(file, where, what, found);
  if (!pem) return undefined;
  const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    found.problems.push(`${where}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    return undefined;
  }
  const certs: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block));
    } catch (err) {
      found.problems.push(`${where}: certificate ${i + 1} in ${file} is not a valid X.509 certificate: ${(err as Error).message}`);
      return undefined;
    }
  }
  return { pem, certs };
}

/** Checks `certFile` + `keyFile` at `now`; `warnWithin` (ms) before expiry a warning is added. */
export function loadPair(certFile: string, keyFile: string, where: string, now: number, warnWithin: number, found: Findings): CertificatePair | undefined {
  const chain = readCertificates(certFile, `${where}.cert`, 'certificate', found);
  const keyPem = read(keyFile, `${where}.key`, 'key', found);
  if (!chain || !keyPem) return undefined;
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    const message = (err as Error).message;
    const hint = /passphrase|encrypted|bad decrypt/i.test(message) ? ' (an encrypted key is not supported: decrypt it)' : '';
    found.problems.push(`${where}.key: ${keyFile} is not a valid private key: ${message}${hint}`);
    return undefined;
  }
  const leaf = chain.certs[0] as X509Certificate;
  if (!leaf.checkPrivateKey(key)) {
    found.problems.push(`${where}.key: the key in ${keyFile} does not match the certificate in ${certFile} (subject ${oneLine(leaf.subject)})`);
    return undefined;
  }
  const notAfter = new Date(leaf.validTo);
  const notBefore = new Date(leaf.validFrom);
  if (notAfter.getTime() <= now) {
    found.problems.push(`${where}.cert: the certificate in ${certFile} expired on ${notAfter.toISOString()}`);
    return undefined;
  }
  if (notBefore.getTime() > now) {
    found.problems.push(`${where}.cert: the certificate in ${certFile} is not valid before ${notBefore.toISOString()}`);
    return undefined;
  }
  const left = notAfter.getTime() - now;
  if (left < warnWithin) {
    found.warnings.push(`${where}.cert: the certificate in ${certFile} expires on ${notAfter.toISOString()} (in ${Math.floor(left / DAY_MS)} days)`);
  }
  for (let i = 0; i + 1 < chain.certs.length; i++) {
    if (!chain.certs[i]!.checkIssued(chain.certs[i + 1]!)) {
      found.warnings.push(`${where}.cert: in ${certFile}, certificate ${i + 2} did not issue certificate ${i + 1}: put the leaf first, then each issuer`);
      break;
    }
  }
  return { certFile, keyFile, certPem: chain.pem, keyPem, leaf, dnsNames: dnsNames(leaf), notAfter };
}

/** Lower-cased DNS subjectAltNames of `cert`, or its CN when it has none. */
export function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  const names = san ? [...san.matchAll(/DNS:([^,\s]+)/g)].map((m) => m[1]!.toLowerCase()) : [];
  if (names.length > 0) return names;
  const cn = /^CN=(.+)$/m.exec(cert.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

/** `CN=a\nO=b` → `CN=a, O=b`, without control characters (safe in a header or a log line). */
export function oneLine(subject: string): string {
  return subject.split('\n').join(', ').replace(/[\x00-\x1f\x7f]/g, '?');
}

/** A digest of the files' contents (a changed renewal shows as a changed digest). */
export function fingerprint(files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f).update('\0');
    try {
      h.update(fs.readFileSync(f));
    } catch (err) {
      h.update(`unreadable:${(err as NodeJS.ErrnoException).code ?? ''}`);
    }
    h.update('\0');
  }
  return h.digest('hex');
}
