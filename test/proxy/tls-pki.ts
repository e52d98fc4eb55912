// Certificates for the TLS tests, made with Debian's `openssl` CLI into a temp dir: a CA, leaf
// certificates it signs (any names, any validity, also already expired), client certificates.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Issued {
  cert: string;
  key: string;
  /** The chain file: leaf then CA. */
  chain: string;
}

export class TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  private serial = 1;

  constructor(name = 'Baton Test CA') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-pki-'));
    this.caCert = path.join(this.dir, 'ca.pem');
    this.caKey = path.join(this.dir, 'ca.key');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', this.caKey, '-out', this.caCert, '-days', '30', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  }

  /**
   * A certificate for `names` (the first is the CN) signed by the CA. `days` of validity from
   * now, or `expired` (valid in January 2020 only); `client` for client authentication.
   */
  issue(file: string, names: string[], options: { days?: number; expired?: boolean; client?: boolean } = {}): Issued {
    const base = path.join(this.dir, file);
    const out: Issued = { cert: `${base}.pem`, key: `${base}.key`, chain: `${base}.chain.pem` };
    const csr = `${base}.csr`;
    const ext = `${base}.ext`;
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', out.key, '-out', csr, '-subj', `/CN=${names[0]}/O=Baton Tests`);
    fs.writeFileSync(ext, [
      `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}`,
      `extendedKeyUsage=${options.client ? 'clientAuth' : 'serverAuth'}`,
      'basicConstraints=CA:FALSE',
    ].join('\n'));
    if (options.expired) {
      // `openssl ca` is the CLI's way to give a certificate dates in the past.
      const db = path.join(this.dir, `${file}.db`);
      fs.writeFileSync(db, '');
      const conf = path.join(this.dir, `${file}.cnf`);
      fs.writeFileSync(conf, [
        '[ca]', 'default_ca = test', '[test]', `database = ${db}`, `new_certs_dir = ${this.dir}`, `certificate = ${this.caCert}`, `private_key = ${this.caKey}`,
        `serial = ${path.join(this.dir, `${file}.serial`)}`, 'default_md = sha256', 'policy = any', 'unique_subject = no', 'copy_extensions = none', '[any]', 'commonName = supplied', 'organizationName = optional',
      ].join('\n'));
      fs.writeFileSync(path.join(this.dir, `${file}.serial`), `${(1000 + this.serial++).toString(16).padStart(4, '0')}\n`);
      openssl('ca', '-batch', '-config', conf, '-in', csr, '-out', out.cert, '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-extfile', ext, '-notext');
    } else {
      openssl('x509', '-req', '-in', csr, '-CA', this.caCert, '-CAkey', this.caKey, '-set_serial', String(this.serial++), '-days', String(options.days ?? 30), '-out', out.cert, '-extfile', ext);
    }
    fs.writeFileSync(out.chain, fs.readFileSync(out.cert, 'utf8') + fs.readFileSync(this.caCert, 'utf8'));
    return out;
  }

  /** The CA certificate's PEM. */
  ca(): Buffer {
    return fs.readFileSync(this.caCert);
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The SHA-256 fingerprint (as Node prints it) of the certificate in `file`. */
export function fingerprintOf(file: string): string {
  return new X509Certificate(fs.readFileSync(file)).fingerprint256;
}
