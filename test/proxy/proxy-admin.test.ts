// Who may use the proxy's admin listener: on a Unix socket only the proxy's uid and root (checked
// with SO_PEERCRED, behind the socket file's mode); on TCP the POSTs need the bearer token.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { validateProxyConfig } from '../../proxy/config/config-load.ts';
import type { BatonProcess } from '../helpers/baton.ts';
import { addresses, fileFor, request, startProxyBaton, type ProxyFile } from './harness.ts';

const NOBODY = 65534;
const run = promisify(execFile);
const started: BatonProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(started.map((b) => b.cleanup()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** One request made by a process running as `uid` (a real peer of another uid): its status and body, or its connect error code. */
async function requestAs(uid: number, target: { socketPath: string } | { port: number }, method: string, urlPath: string, headers: Record<string, string> = {}): Promise<{ status?: number; body?: string; code?: string }> {
  const script = `
    const http = require('node:http');
    const t = JSON.parse(process.argv[1]);
    const where = t.socketPath ? { socketPath: t.socketPath } : { host: '127.0.0.1', port: t.port };
    const req = http.request({ ...where, method: t.method, path: t.path, headers: t.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body })));
    });
    req.on('error', (err) => console.log(JSON.stringify({ code: err.code })));
    req.end();`;
  const { stdout } = await run(process.execPath, ['-e', script, JSON.stringify({ ...target, method, path: urlPath, headers })], { uid, gid: uid, timeout: 10_000 });
  return JSON.parse(stdout) as { status?: number; body?: string; code?: string };
}

function webListener(): Record<string, unknown> {
  return { protocol: 'http', health_path: '/healthz', routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'web\n' } }] };
}

function publicDir(): string {
  // Traversable by every uid, so the socket file's own mode is what is tested.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-admin-'));
  fs.chmodSync(dir, 0o755);
  dirs.push(dir);
  return dir;
}

describe('proxy admin: a Unix socket admin listener admits only the proxy uid and root', () => {
  it('a peer of another uid gets 403 on every endpoint, even through a socket file anyone may open; the owner is answered', async () => {
    const dir = publicDir();
    const socketPath = path.join(dir, 'admin.sock');
    const l = await addresses('web');
    const baton = startProxyBaton({
      listeners: [{ name: 'web', address: l.web!.address }, { name: 'admin', address: `unix:${socketPath}`, mode: '0666' }],
      app: { listeners: { web: webListener() }, admin: { listener: 'admin' } },
    });
    started.push(baton);
    await baton.active(1);
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o666);

    for (const endpoint of ['/healthcheck/fail', '/drain_listeners']) {
      const r = await requestAs(NOBODY, { socketPath }, 'POST', endpoint);
      expect(r.status, JSON.stringify(r)).toBe(403);
      expect(JSON.parse(r.body!).error).toMatch(new RegExp(`uid ${NOBODY} may not use this admin listener`));
    }
    expect((await requestAs(NOBODY, { socketPath }, 'GET', '/stats')).status).toBe(403);
    // Neither refused POST had an effect: the health path says ok and the web listener accepts.
    expect((await request(l.web!.port, { path: '/healthz' })).status).toBe(200);
    expect((await request(l.web!.port, { path: '/' })).body.toString()).toBe('web\n');

    // The owner (this test runs as the proxy's uid) is answered, and its POST takes effect.
    expect((await request(0, { socketPath, path: '/healthcheck/fail', method: 'POST' })).status).toBe(200);
    expect((await request(l.web!.port, { path: '/healthz' })).status).toBe(503);
    expect((await request(0, { socketPath, path: '/healthcheck/ok', method: 'POST' })).status).toBe(200);
    expect((await request(l.web!.port, { path: '/healthz' })).status).toBe(200);
    expect((await request(0, { socketPath, path: '/server_info' })).status).toBe(200);
  });

  it('with socket mode 0600 a peer of another uid cannot even connect', async () => {
    const dir = publicDir();
    const socketPath = path.join(dir, 'admin.sock');
    const l = await addresses('web');
    const baton = startProxyBaton({
      listeners: [{ name: 'web', address: l.web!.address }, { name: 'admin', address: `unix:${socketPath}`, mode: '0600' }],
      app: { listeners: { web: webListener() }, admin: { listener: 'admin' } },
    });
    started.push(baton);
    await baton.active(1);
    expect(await requestAs(NOBODY, { socketPath }, 'POST', '/healthcheck/fail')).toEqual({ code: 'EACCES' });
    expect((await request(0, { socketPath, path: '/ready' })).status).toBe(200);
  });
});

describe('proxy admin: a TCP admin listener needs the bearer token for its POSTs', () => {
  it('without token_file every POST is refused; after a reload that adds one: missing and wrong tokens 403, the right one 200; GETs need none', async () => {
    const l = await addresses('web', 'admin');
    const file = (admin: Record<string, unknown>): ProxyFile => ({
      listeners: [l.web!, l.admin!].map(({ name, address }) => ({ name, address })),
      app: { listeners: { web: webListener() }, admin: { listener: 'admin', ...admin } },
    });
    const baton = startProxyBaton(file({}));
    started.push(baton);
    await baton.active(1);
    const admin = l.admin!.port;
    const noToken = await request(admin, { path: '/healthcheck/fail', method: 'POST' });
    expect(noToken.status).toBe(403);
    expect(JSON.parse(noToken.body.toString()).error).toMatch(/without app\.admin\.token_file/);
    expect((await request(admin, { path: '/stats' })).status).toBe(200);

    const token = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6';
    fs.writeFileSync(path.join(baton.dir, 'admin.token'), `${token}\n`, { mode: 0o600 });
    baton.writeConfig(fileFor(baton.configPath, file({ token_file: 'admin.token' })));
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });

    const post = (headers: Record<string, string>) => request(admin, { path: '/healthcheck/fail', method: 'POST', headers });
    expect((await post({})).status).toBe(403);
    expect((await post({ authorization: 'Bearer wrong-token-wrong-token-wrong' })).status).toBe(403);
    expect((await post({ authorization: `Basic ${token}` })).status).toBe(403);
    expect((await request(l.web!.port, { path: '/healthz' })).status).toBe(200);
    // A peer of another uid without the token is refused as well.
    expect((await requestAs(NOBODY, { port: admin }, 'POST', '/drain_listeners')).status).toBe(403);
    expect((await request(l.web!.port, { path: '/' })).status).toBe(200);

    expect((await post({ authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await request(l.web!.port, { path: '/healthz' })).status).toBe(503);
    expect((await request(admin, { path: '/stats' })).status).toBe(200);
  });
});

describe('proxy admin: the token file is checked for owner and mode', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-token-'));
  dirs.push(dir);
  const config = (tokenFile: string) => ({
    listeners: [{ name: 'admin', address: '127.0.0.1:9901' }],
    app: { listeners: {}, admin: { listener: 'admin', token_file: tokenFile } },
  });
  const problem = (tokenFile: string): string => {
    try {
      validateProxyConfig(config(tokenFile), path.join(dir, 'proxy.yaml'));
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };
  const write = (name: string, text: string, mode: number): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text, { mode });
    fs.chmodSync(p, mode);
    return p;
  };

  it('accepts an owner-only file and refuses a group- or world-readable one, a symlink, another uid\'s file, a short token, a missing file', () => {
    write('good', 'x'.repeat(32), 0o600);
    expect(problem('good')).toBe('');
    write('readable', 'x'.repeat(32), 0o640);
    expect(problem('readable')).toMatch(/app\.admin\.token_file: token file '.*readable' has mode 0640: it must not be readable or writable by group or other/);
    fs.symlinkSync(path.join(dir, 'good'), path.join(dir, 'link'));
    expect(problem('link')).toMatch(/app\.admin\.token_file: token file '.*link' is a symbolic link/);
    fs.chownSync(write('theirs', 'x'.repeat(32), 0o600), NOBODY, NOBODY);
    expect(problem('theirs')).toMatch(new RegExp(`is owned by uid ${NOBODY}, not the proxy's uid ${process.getuid!()}`));
    write('short', 'short\n', 0o600);
    expect(problem('short')).toMatch(/holds 5 characters; a token needs at least 16/);
    expect(problem('missing')).toMatch(/app\.admin\.token_file: cannot open token file '.*missing'.*ENOENT/);
  });
});
