import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, validateProxyConfig } from '../../../proxy/index.ts';
import { NODE_FLAGS, ROOT } from '../../helpers/baton.ts';

const base = {
  listeners: [
    { name: 'web', address: '127.0.0.1:8080' },
    { name: 'admin', address: '127.0.0.1:9901' },
  ],
  app: {
    listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'main' }] } },
    clusters: { main: { endpoints: ['127.0.0.1:3000', 'unix:/run/app.sock'] } },
    admin: { listener: 'admin' },
  },
};

function errorOf(raw: unknown): string {
  try {
    validateProxyConfig(raw, 'proxy.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

function withApp(app: Record<string, unknown>): unknown {
  return { ...base, app: { ...base.app, ...app } };
}

describe('proxy configuration', () => {
  it('accepts a valid file and fills in the defaults', () => {
    const c = validateProxyConfig(base, '/etc/proxy.yaml');
    expect(c.listeners.map((l) => [l.name, l.protocol])).toEqual([
      ['web', 'http'],
      ['admin', 'admin'],
    ]);
    const main = c.clusters[0]!;
    expect(main).toMatchObject({ name: 'main', lb_policy: 'round_robin', connect_timeout: 5000, timeout: 15000, max_connections: 1024, max_pending_requests: 1024 });
    expect(main.parsedEndpoints).toEqual([
      { kind: 'tcp', host: '127.0.0.1', port: 3000, key: '127.0.0.1:3000' },
      { kind: 'unix', path: '/run/app.sock', key: 'unix:/run/app.sock' },
    ]);
    expect(c.accessLog).toEqual({ enabled: true, path: 'stdout' });
  });

  it('names the path in the file and the problem for every error', () => {
    expect(errorOf(withApp({ clusters: { main: { endpoints: ['127.0.0.1:3000'], lb_policy: 'random' } } }))).toMatch(/app\.clusters\.main\.lb_policy: /);
    expect(errorOf(withApp({ clusters: { main: { endpoints: ['nope'] } } }))).toMatch(/app\.clusters\.main\.endpoints\[0\]: invalid endpoint 'nope'/);
    expect(errorOf(withApp({ clusters: { main: { endpoints: ['127.0.0.1:1'], connect_timeout: 'soon' } } }))).toMatch(/app\.clusters\.main\.connect_timeout: invalid duration 'soon'/);
    expect(errorOf(withApp({ clusters: { main: { endpoints: ['127.0.0.1:1'], colour: 'red' } } }))).toMatch(/app\.clusters\.main\.colour: unknown key/);
    expect(errorOf(withApp({ listeners: { web: { protocol: 'http', routes: [{ cluster: 'nowhere' }] } } }))).toMatch(/app\.listeners\.web\.routes\[0\]\.cluster: no cluster named 'nowhere'/);
    expect(errorOf(withApp({ listeners: { web: { protocol: 'http', routes: [{ match: { prefix: 'x' }, cluster: 'main' }] } } }))).toMatch(/app\.listeners\.web\.routes\[0\]\.match\.prefix: expected a path prefix/);
    expect(errorOf(withApp({ listeners: { web: { protocol: 'http', routes: [{ match: {} }] } } }))).toMatch(/app\.listeners\.web\.routes\[0\]: expected exactly one of cluster or direct_response/);
    expect(errorOf(withApp({ listeners: { ghost: { protocol: 'tcp', cluster: 'main' } } }))).toMatch(/app\.listeners\.ghost: no listener named 'ghost' in listeners/);
    expect(errorOf(withApp({ listeners: { web: { protocol: 'udp' } } }))).toMatch(/app\.listeners\.web\.protocol: /);
    expect(errorOf(withApp({ admin: { listener: 'web' } }))).toMatch(/app\.admin\.listener: 'web' is also in app\.listeners/);
    expect(errorOf({ listeners: [{ name: 'web', address: '0.0.0.0:80' }], app: { listeners: {}, admin: { listener: 'web' } } })).toMatch(/app\.admin\.listener: '0\.0\.0\.0:80' is not loopback/);
    expect(errorOf({ listeners: [] })).toMatch(/app: /);
  });

  it('reports YAML syntax errors with the file name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-config-'));
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, 'app: [unclosed\n');
    expect(() => loadConfig(file)).toThrow(/invalid YAML in .*bad\.yaml/);
    fs.rmSync(dir, { recursive: true });
  });

  it('the program exits 2 on a bad file, naming the path, and --check accepts a good one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-config-'));
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, stringify(withApp({ clusters: { main: { endpoints: [] } } })));
    const run = (file: string, ...args: string[]) => execa(process.execPath, [...NODE_FLAGS, path.join(ROOT, 'proxy/main.ts'), '--config', file, ...args], { reject: false, timeout: 20_000 });
    const r = await run(bad);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/app\.clusters\.main\.endpoints: expected at least one endpoint/);
    const good = path.join(dir, 'good.yaml');
    fs.writeFileSync(good, stringify(base));
    const ok = await run(good, '--check');
    expect([ok.exitCode, ok.stdout]).toEqual([0, `${good}: ok`]);
    fs.rmSync(dir, { recursive: true });
  });

  it('examples/proxy.yaml is valid', () => {
    const c = loadConfig(path.join(ROOT, 'examples/proxy.yaml'));
    expect(c.listeners.map((l) => l.name).sort()).toEqual(['admin', 'raw', 'web']);
  });
});
