/**
 * The proxy keeps what its schema made of a configuration file for the next generation
 * (proxy/config/config-cache.ts): the same text loads to the same configuration without yaml or valibot, a
 * changed file is checked in full again (a bad one still refused), and the cache is used only in
 * a directory of this user's that others cannot write to — and never by --check.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../proxy/config/config-load.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-config-cache-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const saved = process.env.NODE_COMPILE_CACHE;
let n = 0;
let cacheDir = '';
beforeEach(() => {
  cacheDir = path.join(tmp, `cache-${(n += 1)}`);
  fs.mkdirSync(cacheDir, { mode: 0o700 });
  process.env.NODE_COMPILE_CACHE = cacheDir;
});
afterEach(() => {
  if (saved === undefined) delete process.env.NODE_COMPILE_CACHE;
  else process.env.NODE_COMPILE_CACHE = saved;
});

const file = (name: string, content: unknown): string => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, stringify(content));
  return f;
};
const entries = (): string[] => {
  const dir = path.join(cacheDir, 'baton-proxy-config');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
};
const valid = {
  listeners: [
    { name: 'web', address: '127.0.0.1:8080' },
    { name: 'admin', address: 'unix:/tmp/baton-cache-test-admin.sock' },
  ],
  app: {
    listeners: { web: { protocol: 'http', health_path: '/healthz', routes: [{ match: { prefix: '/' }, cluster: 'main' }] } },
    clusters: { main: { endpoints: ['127.0.0.1:3000'], health_check: { path: '/', interval: '2s' }, timeout: '15s' } },
    admin: { listener: 'admin' },
  },
};

describe('the proxy configuration cache', () => {
  it('the same file loads to the same configuration from the cache; an edit is checked in full, and a bad one refused', () => {
    const f = file('proxy.yaml', valid);
    const first = loadConfig(f);
    expect(entries()).toHaveLength(1);
    const second = loadConfig(f);
    expect(entries()).toHaveLength(1);
    expect(second).toEqual(first);
    expect(second.clusters[0]?.timeout).toBe(15_000);
    // It did come from the entry: one changed by hand is what the next load returns.
    const entry = path.join(cacheDir, 'baton-proxy-config', entries()[0]!);
    const stored = JSON.parse(fs.readFileSync(entry, 'utf8')) as { data: { app: { clusters: { main: { timeout: number } } } } };
    stored.data.app.clusters.main.timeout = 12_345;
    fs.writeFileSync(entry, JSON.stringify(stored));
    expect(loadConfig(f).clusters[0]?.timeout).toBe(12_345);
    expect(loadConfig(f, { cache: false }).clusters[0]?.timeout).toBe(15_000);

    fs.writeFileSync(f, stringify({ ...valid, app: { ...valid.app, clusters: { main: { ...valid.app.clusters.main, timeout: '20s' } } } }));
    expect(loadConfig(f).clusters[0]?.timeout).toBe(20_000);
    expect(entries()).toHaveLength(2);
    fs.writeFileSync(f, stringify({ ...valid, app: { ...valid.app, clusters: { main: { endpoints: ['127.0.0.1:3000'], timeout: 'soon' } } } }));
    expect(() => loadConfig(f)).toThrow(ConfigError);
    expect(() => loadConfig(f)).toThrow(/app\.clusters\.main\.timeout/);
    expect(entries()).toHaveLength(2);
  });

  it('what follows the schema is checked on every load: a token file that went away fails the cached file too', () => {
    const token = path.join(tmp, 'token');
    fs.writeFileSync(token, 'a'.repeat(32), { mode: 0o600 });
    const f = file('token.yaml', { ...valid, app: { ...valid.app, admin: { listener: 'admin', token_file: token } } });
    expect(loadConfig(f).adminToken).toBeDefined();
    fs.rmSync(token);
    expect(() => loadConfig(f)).toThrow(/app\.admin\.token_file/);
  });

  it('no cache without NODE_COMPILE_CACHE, in a directory others can write to, or with cache: false', () => {
    const f = file('plain.yaml', valid);
    delete process.env.NODE_COMPILE_CACHE;
    expect(loadConfig(f).listeners).toHaveLength(2);
    process.env.NODE_COMPILE_CACHE = cacheDir;
    fs.chmodSync(cacheDir, 0o777);
    expect(loadConfig(f).listeners).toHaveLength(2);
    expect(entries()).toEqual([]);
    fs.chmodSync(cacheDir, 0o700);
    loadConfig(f, { cache: false });
    expect(entries()).toEqual([]);
    loadConfig(f);
    expect(entries()).toHaveLength(1);
    expect(fs.statSync(path.join(cacheDir, 'baton-proxy-config', entries()[0]!)).mode & 0o777).toBe(0o600);
  });
});
