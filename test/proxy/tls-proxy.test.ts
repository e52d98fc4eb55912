import { execa } from 'execa';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, NODE_FLAGS, ROOT } from '../helpers/baton.ts';
import { addresses, startProxyBaton, statValue, type ProxyFile } from './harness.ts';
import { h2Connect, h2Request, handshake, httpsRequest } from './tls-clients.ts';
import { TestPki, type Issued } from './tls-pki.ts';
import { startUpstream, type Upstream } from './upstreams.ts';

let pki: TestPki;
let main: Issued;
let other: Issued;
let client: Issued;
const upstreams: Upstream[] = [];

beforeAll(() => {
  pki = new TestPki();
  main = pki.issue('main', ['a.test', '*.w.test']);
  other = pki.issue('other', ['b.test']);
  client = pki.issue('alice', ['alice'], { client: true });
});
afterAll(() => pki.cleanup());
afterEach(async () => {
  await cleanupAll();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

async function upstream(name: string): Promise<Upstream> {
  const u = await startUpstream(name);
  upstreams.push(u);
  return u;
}

function tlsFile(l: Record<string, { address: string }>, cluster: string[], tlsConfig: Record<string, unknown>, extra: Record<string, unknown> = {}): ProxyFile {
  return {
    listeners: [{ name: 'web', address: l.web!.address }, { name: 'admin', address: l.admin!.address }],
    app: {
      listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'main' }], tls: tlsConfig, ...extra } },
      clusters: { main: { endpoints: cluster } },
      admin: { listener: 'admin' },
      access_log: { enabled: false },
    },
  };
}

describe('proxy: TLS and HTTP/2 downstream', () => {
  it('HTTPS and HTTP/2 (curl and Node clients): headers as for HTTP/1.1, bodies streamed both ways, stats by version and ALPN', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    const baton = startProxyBaton(tlsFile(l, [a.address], { certificates: [{ cert: main.chain, key: main.key }] }));
    await baton.active(1);
    const port = l.web!.port;
    const curl = (...args: string[]) => execa('curl', ['-sS', '--cacert', pki.caCert, '--resolve', `a.test:${port}:127.0.0.1`, ...args], { reject: false });

    const h2 = await curl('--http2', '-w', '\n%{http_version}', `https://a.test:${port}/headers`, '-H', 'cookie: x=1', '-H', 'cookie: y=2');
    const [json, version] = h2.stdout.split('\n');
    expect(version).toBe('2');
    const seen = JSON.parse(json!) as Record<string, string>;
    expect(seen).toMatchObject({ host: `a.test:${port}`, 'x-forwarded-proto': 'https', cookie: 'x=1; y=2' });
    expect(Object.keys(seen).some((k) => k.startsWith(':'))).toBe(false);
    const h1 = await curl('--http1.1', '-w', '\n%{http_version}', `https://a.test:${port}/`);
    expect(h1.stdout).toBe('upstream a\n\n1.1');

    // Node clients: an HTTP/2 upload without Content-Length (streamed up, chunked to the upstream) and 4 MiB streamed down.
    const session = await h2Connect(port, pki.ca());
    const body = 'u'.repeat(1024 * 1024);
    const echo = await h2Request(session, '/echo', { method: 'POST', body });
    expect([echo.status, echo.body.length]).toEqual([200, body.length]);
    const big = await h2Request(session, '/bytes?n=4194304');
    expect([big.status, big.body.length, big.headers['x-done']]).toEqual([200, 4194304, undefined]);
    const many = await Promise.all(Array.from({ length: 50 }, () => h2Request(session, '/')));
    expect(many.every((r) => r.status === 200 && r.body === 'upstream a\n')).toBe(true);
    session.close();
    const viaHttps = await httpsRequest(port, { ca: pki.ca(), path: '/' });
    expect([viaHttps.status, viaHttps.body]).toEqual([200, 'upstream a\n']);

    const admin = l.admin!.port;
    await expect.poll(() => statValue(admin, 'listener.web.ssl.handshake')).toBeGreaterThanOrEqual(4);
    expect(await statValue(admin, 'listener.web.ssl.alpn.h2')).toBeGreaterThanOrEqual(2);
    expect(await statValue(admin, 'listener.web.ssl.alpn.http_1_1')).toBeGreaterThanOrEqual(1);
    // Node's https client offers no ALPN.
    expect(await statValue(admin, 'listener.web.ssl.alpn.none')).toBeGreaterThanOrEqual(1);
    expect(await statValue(admin, 'listener.web.ssl.versions.TLSv1_3')).toBeGreaterThanOrEqual(4);
    expect(await statValue(admin, 'http.web.http2.streams_total')).toBeGreaterThanOrEqual(53);
    await expect.poll(() => statValue(admin, 'http.web.http2.streams_active')).toBe(0);

    // TLS 1.2 minimum by default: a TLS 1.1 client is refused, and so is one without a shared cipher; each counted by reason.
    const sClient = (...args: string[]) => execa('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'a.test', ...args], { reject: false, input: '' });
    expect((await sClient('-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0')).exitCode).not.toBe(0);
    expect((await sClient('-tls1_2', '-cipher', 'NULL-SHA256@SECLEVEL=0')).exitCode).not.toBe(0);
    await expect.poll(() => statValue(admin, 'listener.web.ssl.handshake_error.unsupported_protocol')).toBe(1);
    await expect.poll(() => statValue(admin, 'listener.web.ssl.handshake_error.no_shared_cipher')).toBe(1);
  });

  it('SNI picks the certificate: exact name, wildcard of one label, the default for an unknown name and for none', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    const baton = startProxyBaton(tlsFile(l, [a.address], { certificates: [{ cert: other.chain, key: other.key }, { cert: main.chain, key: main.key, default: true }] }));
    await baton.active(1);
    const port = l.web!.port;
    const cn = async (servername?: string): Promise<string> => /CN=([^\n]+)/.exec((await handshake(port, servername ? { servername } : {})).subject)?.[1] ?? '';
    expect(await cn('b.test')).toBe('b.test');
    expect(await cn('B.TEST')).toBe('b.test');
    expect(await cn('a.test')).toBe('a.test');
    expect(await cn('x.w.test')).toBe('a.test');
    expect(await cn('unknown.example')).toBe('a.test');
    expect(await cn()).toBe('a.test');
    // A verified request by name works for both certificates.
    expect((await httpsRequest(port, { ca: pki.ca(), servername: 'b.test', path: '/' })).status).toBe(200);
    expect((await httpsRequest(port, { ca: pki.ca(), servername: 'deep.w.test', path: '/' })).status).toBe(200);
    // *.w.test covers one label only: a.b.w.test gets the default certificate, whose names do not include it.
    await expect(httpsRequest(port, { ca: pki.ca(), servername: 'a.b.w.test', path: '/' })).rejects.toThrow(/altnames|does not match/i);
    const admin = l.admin!.port;
    expect(await statValue(admin, 'listener.web.ssl.sni.exact')).toBeGreaterThanOrEqual(4);
    expect(await statValue(admin, 'listener.web.ssl.sni.wildcard')).toBeGreaterThanOrEqual(2);
    expect(await statValue(admin, 'listener.web.ssl.sni.default')).toBeGreaterThanOrEqual(2);
  });

  it('client certificates: a verified client is answered and its subject goes upstream (a forged header is dropped); none or an untrusted one is refused', async () => {
    const a = await upstream('a');
    const l = await addresses('web', 'admin');
    const baton = startProxyBaton(tlsFile(l, [a.address], {
      certificates: [{ cert: main.chain, key: main.key }],
      client_auth: { ca: pki.caCert, subject_header: 'x-client-subject' },
    }));
    await baton.active(1);
    const port = l.web!.port;
    const ok = await httpsRequest(port, { ca: pki.ca(), cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key), path: '/headers', headers: { 'X-Client-Subject': 'CN=mallory' } });
    expect(ok.status).toBe(200);
    expect((JSON.parse(ok.body) as Record<string, string>)['x-client-subject']).toBe('CN=alice, O=Baton Tests');
    const session = await h2Connect(port, pki.ca(), 'a.test', { cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) });
    const viaH2 = await h2Request(session, '/headers', { headers: { 'x-client-subject': 'forged' } });
    expect((JSON.parse(viaH2.body) as Record<string, string>)['x-client-subject']).toBe('CN=alice, O=Baton Tests');
    session.close();

    await expect(httpsRequest(port, { ca: pki.ca(), path: '/' })).rejects.toThrow();
    const stranger = new TestPki('Someone Else');
    try {
      const bad = stranger.issue('mallory', ['mallory'], { client: true });
      await expect(httpsRequest(port, { ca: pki.ca(), cert: fs.readFileSync(bad.cert), key: fs.readFileSync(bad.key), path: '/' })).rejects.toThrow();
    } finally {
      stranger.cleanup();
    }
    const admin = l.admin!.port;
    await expect.poll(() => statValue(admin, 'listener.web.ssl.handshake_error.no_client_cert')).toBeGreaterThanOrEqual(1);
    await expect.poll(() => statValue(admin, 'listener.web.ssl.handshake_error.bad_client_cert')).toBeGreaterThanOrEqual(1);
  });

  it('a tcp listener terminates TLS and pipes the cleartext; a cluster with tls verifies its endpoints against a CA', async () => {
    const a = await upstream('a');
    const secure = https.createServer({ cert: fs.readFileSync(main.cert), key: fs.readFileSync(main.key) }, (req, res) => res.end(`secure upstream saw ${req.headers['x-forwarded-proto']}\n`));
    await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
    const securePort = (secure.address() as net.AddressInfo).port;
    try {
      const l = await addresses('web', 'raw', 'admin');
      const file: ProxyFile = {
        listeners: [l.web!, l.raw!, l.admin!].map(({ name, address }) => ({ name, address })),
        app: {
          listeners: {
            web: { protocol: 'http', routes: [{ match: { prefix: '/wrong-ca' }, cluster: 'wrongca' }, { match: { prefix: '/' }, cluster: 'secure' }] },
            raw: { protocol: 'tcp', cluster: 'plain', tls: { certificates: [{ cert: main.chain, key: main.key }], alpn: ['x-test'] } },
          },
          clusters: {
            plain: { endpoints: [a.address] },
            secure: { endpoints: [`127.0.0.1:${securePort}`], tls: { ca: pki.caCert, server_name: 'a.test' } },
            wrongca: { endpoints: [`127.0.0.1:${securePort}`], tls: { server_name: 'a.test' } },
          },
          admin: { listener: 'admin' },
          access_log: { enabled: false },
        },
      };
      const baton = startProxyBaton(file);
      await baton.active(1);
      const text = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: l.raw!.port, servername: 'a.test', ca: pki.ca(), ALPNProtocols: ['x-test'] }, () => {
          expect(s.alpnProtocol).toBe('x-test');
          s.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
        });
        let out = '';
        s.on('data', (c: Buffer) => (out += c.toString()));
        s.on('end', () => resolve(out));
        s.on('error', reject);
      });
      expect(text).toMatch(/^HTTP\/1\.1 200[\s\S]*upstream a\n$/);
      const viaTls = await fetch(`http://127.0.0.1:${l.web!.port}/`);
      expect([viaTls.status, await viaTls.text()]).toEqual([200, 'secure upstream saw http\n']);
      // Without the test CA the endpoint's certificate is not trusted (system CAs only): no request reaches it.
      const refused = await fetch(`http://127.0.0.1:${l.web!.port}/wrong-ca`);
      expect(refused.status).toBe(503);
      expect(await refused.text()).toMatch(/upstream/);
    } finally {
      await new Promise<void>((r) => secure.close(() => r()));
    }
  });
});

describe('proxy: TLS configuration errors name the file and the problem', () => {
  const check = (file: ProxyFile) => {
    const dir = fs.mkdtempSync(path.join(pki.dir, 'cfg-'));
    const config = path.join(dir, 'proxy.yaml');
    fs.writeFileSync(config, JSON.stringify(file));
    return execa(process.execPath, [...NODE_FLAGS, path.join(ROOT, 'proxy/main.ts'), '--check', '--config', config], { reject: false });
  };
  const file = (t: Record<string, unknown>): ProxyFile => ({
    listeners: [{ name: 'web', address: '127.0.0.1:1' }],
    app: { listeners: { web: { protocol: 'http', routes: [{ cluster: 'c' }], tls: t } }, clusters: { c: { endpoints: ['127.0.0.1:2'] } } },
  });

  it('unreadable file, key of another certificate, expired certificate, not a certificate: exit 2 with file and problem', async () => {
    const expired = pki.issue('expired', ['old.test'], { expired: true });
    const missing = path.join(pki.dir, 'nope.pem');
    const garbage = path.join(pki.dir, 'garbage.pem');
    fs.writeFileSync(garbage, 'not a certificate\n');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ certificates: [{ cert: missing, key: main.key }] }, new RegExp(`certificates\\[0\\]\\.cert: cannot read certificate ${missing}: ENOENT`)],
      [{ certificates: [{ cert: main.chain, key: other.key }] }, new RegExp(`certificates\\[0\\]\\.key: the key in ${other.key} does not match the certificate in ${main.chain}`)],
      [{ certificates: [{ cert: expired.cert, key: expired.key }] }, new RegExp(`certificates\\[0\\]\\.cert: the certificate in ${expired.cert} expired on 2020-02-01`)],
      [{ certificates: [{ cert: garbage, key: main.key }] }, new RegExp(`${garbage} holds no PEM certificate`)],
      [{ certificates: [{ cert: main.chain, key: main.cert }] }, /is not a valid private key/],
      [{ certificates: [{ cert: main.chain, key: main.key }], client_auth: { ca: missing } }, /client_auth\.ca: cannot read CA file/],
      [{ certificates: [{ cert: main.chain, key: main.key }], min_version: 'TLSv1.0' }, /min_version: expected TLSv1\.2 or TLSv1\.3/],
    ];
    for (const [t, pattern] of cases) {
      const r = await check(file(t));
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(pattern);
    }
  });

  it('a certificate that expires within the warning window passes with a warning naming it', async () => {
    const soon = pki.issue('soon', ['soon.test'], { days: 5 });
    const r = await check(file({ certificates: [{ cert: soon.cert, key: soon.key }] }));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`warning: app\\.listeners\\.web\\.tls\\.certificates\\[0\\]\\.cert: the certificate in ${soon.cert} expires on .* \\(in [45] days\\)`));
  });
});
