/**
 * The examples are documentation that can rot: every Baton config under examples/ (including the
 * one inside the Kubernetes ConfigMap) must load, the proxy's `app:` sections must validate, the
 * manifests must parse with the kinds the guide describes, and the systemd units must carry the
 * directives docs/operations.md and examples/systemd/README.md promise. No processes are started,
 * except `systemd-analyze verify` where it exists.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateProxyConfig } from '../../proxy/config/config-load.ts';
import { loadConfig } from '../../supervisor/config/config.ts';

const root = path.resolve(import.meta.dirname, '../..');
const examples = path.join(root, 'examples');
const k8sDir = path.join(examples, 'kubernetes');
const systemdDir = path.join(examples, 'systemd');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-examples-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

const yamlFiles = walk(examples).filter((f) => /\.ya?ml$/.test(f));
/** Kubernetes manifests: every document has apiVersion and kind. */
const manifestFiles = yamlFiles.filter((f) => f.startsWith(k8sDir + path.sep));

function parseDocs(file: string): Record<string, unknown>[] {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${file}: not YAML documents`);
  for (const d of docs) expect(d.errors, `${path.relative(root, file)}: ${d.errors.map((e) => e.message).join('; ')}`).toEqual([]);
  return docs.map((d) => d.toJS() as Record<string, unknown>).filter((d) => d !== null);
}

interface BatonConfigSource {
  label: string;
  /** A file loadConfig can read: the example itself, or a ConfigMap key written out. */
  file: string;
}

/** Baton configs: the plain YAML files outside kubernetes/, and ConfigMap keys that look like one. */
const batonConfigs: BatonConfigSource[] = [
  ...yamlFiles.filter((f) => !manifestFiles.includes(f)).map((f) => ({ label: path.relative(root, f), file: f })),
  ...manifestFiles.flatMap((f) =>
    parseDocs(f)
      .filter((d) => d.kind === 'ConfigMap')
      .flatMap((d) =>
        Object.entries((d.data ?? {}) as Record<string, string>)
          .filter(([key, text]) => /\.ya?ml$/.test(key) && /^(command|listeners):/m.test(text))
          .map(([key, text]) => {
            const name = (d.metadata as { name: string }).name;
            const file = path.join(tmp, `${name}-${key}`);
            fs.writeFileSync(file, text);
            return { label: `${path.relative(root, f)} ConfigMap ${name} ${key}`, file };
          }),
      ),
  ),
];

describe('Baton configs under examples/', () => {
  it('finds the configs the guides rely on', () => {
    const labels = batonConfigs.map((c) => c.label);
    expect(labels).toEqual(
      expect.arrayContaining([
        'examples/baton.yaml',
        'examples/proxy.yaml',
        'examples/systemd/baton.yaml',
        'examples/kubernetes/deployment.yaml ConfigMap baton-proxy baton.yaml',
      ]),
    );
  });

  for (const { label, file } of batonConfigs) {
    it(`${label} loads with loadConfig`, () => {
      const config = loadConfig(file, {});
      expect(config.command.length).toBeGreaterThan(0);
    });

    it(`${label}: its app: section, if any, is a valid proxy config`, () => {
      const raw = parseDocs(file)[0] ?? {};
      if (raw.app === undefined) return;
      expect(() => validateProxyConfig(raw, file)).not.toThrow();
    });
  }
});

describe('examples/kubernetes', () => {
  const kinds = (file: string) => parseDocs(path.join(k8sDir, file)).map((d) => `${d.apiVersion} ${d.kind}`);

  it('deployment.yaml holds a ConfigMap, a Deployment and a Service', () => {
    expect(kinds('deployment.yaml')).toEqual(['v1 ConfigMap', 'apps/v1 Deployment', 'v1 Service']);
  });

  it('prometheus.yaml holds a PodMonitor and a scrape config, both for /metrics on the metrics listener the Deployment opens', () => {
    const docs = parseDocs(path.join(k8sDir, 'prometheus.yaml'));
    expect(docs.map((d) => `${d.apiVersion} ${d.kind}`)).toEqual(['monitoring.coreos.com/v1 PodMonitor', 'v1 ConfigMap']);
    const endpoint = (docs[0]!.spec as { podMetricsEndpoints: { port: string; path: string }[] }).podMetricsEndpoints[0];
    expect(endpoint).toMatchObject({ port: 'metrics', path: '/metrics' });
    const prom = parseDocs(writeTemp('prometheus.yml', (docs[1]!.data as Record<string, string>)['prometheus.yml']!))[0] as {
      scrape_configs: { metrics_path: string }[];
    };
    expect(prom.scrape_configs[0]!.metrics_path).toBe('/metrics');
    const [configMap, deployment] = parseDocs(path.join(k8sDir, 'deployment.yaml')) as any[];
    const config = loadConfig(writeTemp('baton.yaml', configMap.data['baton.yaml']), {});
    expect(config.metrics?.listen).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 9464 });
    const template = deployment.spec.template;
    expect(template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9464', 'prometheus.io/path': '/metrics' });
    expect(template.spec.containers[0].ports).toContainEqual({ name: 'metrics', containerPort: 9464 });
  });

  it('the Deployment runs Baton as the entrypoint with the probes, preStop and grace period the README describes', () => {
    const [configMap, deployment] = parseDocs(path.join(k8sDir, 'deployment.yaml')) as any[];
    const pod = deployment.spec.template.spec;
    const c = pod.containers[0];
    expect(c.command).toEqual(['baton', 'run', '--config', '/etc/baton/baton.yaml']);
    const ports = Object.fromEntries(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    expect(ports).toEqual({ web: 8080, admin: 9901, metrics: 9464 });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'admin' });
    expect(c.livenessProbe.httpGet.port).toBe('admin');
    expect(c.lifecycle.preStop.sleep.seconds).toBe(5);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    // The config must be mounted as a directory: a subPath mount never sees ConfigMap updates.
    const mount = c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/etc/baton');
    expect(mount.subPath).toBeUndefined();

    const file = writeTemp('k8s-baton.yaml', configMap.data['baton.yaml']);
    const config = loadConfig(file, {});
    expect(config.listeners.map((l) => `${l.name} ${l.key}`)).toEqual(['web 0.0.0.0:8080', 'admin 0.0.0.0:9901']);
    const preStop = c.lifecycle.preStop.sleep.seconds * 1000;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStop + config.drainTimeout + config.shutdownTimeout);
  });
});

/** `[Section]` → key → values (a key may repeat). Comments and blank lines dropped. */
function parseUnit(file: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`${path.basename(file)}: unexpected line '${line}'`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  }
  return sections;
}

describe('examples/systemd', () => {
  const service = parseUnit(path.join(systemdDir, 'baton.service'));
  const socket = parseUnit(path.join(systemdDir, 'baton.socket'));
  const one = (unit: Map<string, Map<string, string[]>>, section: string, key: string) => unit.get(section)?.get(key)?.at(-1);
  const svc = (key: string) => one(service, 'Service', key);

  it('baton.service has the directives the guide promises', () => {
    expect(svc('Type')).toBe('notify-reload');
    expect(svc('NotifyAccess')).toBe('all');
    expect(svc('ExecStart')).toBe('/usr/local/bin/baton run --config /etc/baton/baton.yaml');
    expect(svc('ExecReload')).toBeUndefined(); // notify-reload sends SIGHUP itself
    expect(svc('KillMode')).toBe('mixed');
    expect(svc('WatchdogSec')).toBe('30s');
    expect(svc('FileDescriptorStoreMax')).toBe('16');
    expect(svc('Environment')).toBe('BATON_RUNTIME_DIR=%t/baton');
    expect(svc('RuntimeDirectory')).toBe('baton');
    expect(svc('RuntimeDirectoryMode')).toBe('0700');
    expect(svc('RuntimeDirectoryPreserve')).toBe('restart');
    expect(svc('User')).toBeTruthy();
    expect(svc('Group')).toBeTruthy();
    for (const key of [
      'NoNewPrivileges',
      'ProtectHome',
      'PrivateTmp',
      'ProtectKernelTunables',
      'ProtectKernelModules',
      'ProtectControlGroups',
      'LockPersonality',
      'RestrictRealtime',
    ]) {
      expect(svc(key), key).toBe('yes');
    }
    expect(svc('ProtectSystem')).toBe('strict');
    expect(svc('RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6');
    expect(svc('SystemCallArchitectures')).toBe('native');
    // V8's JIT needs W+X pages; a private /dev would hide the stats segment in /dev/shm.
    expect(svc('MemoryDenyWriteExecute')).toBeUndefined();
    expect(svc('PrivateDevices')).toBeUndefined();
  });

  it('TimeoutStopSec exceeds drain-timeout + shutdown-timeout of the config it runs', () => {
    const config = loadConfig(path.join(systemdDir, 'baton.yaml'), {});
    const m = /^(\d+)s$/.exec(svc('TimeoutStopSec') ?? '');
    expect(m).not.toBeNull();
    expect(Number(m![1]) * 1000).toBeGreaterThan(config.drainTimeout + config.shutdownTimeout);
  });

  it('baton.socket names its socket after a listener of baton.yaml, at the same address', () => {
    const config = loadConfig(path.join(systemdDir, 'baton.yaml'), {});
    expect(one(socket, 'Socket', 'ListenStream')).toBe('127.0.0.1:8080');
    expect(one(socket, 'Socket', 'Service')).toBe('baton.service');
    const name = one(socket, 'Socket', 'FileDescriptorName');
    expect(name).toBe('web');
    expect(config.listeners.find((l) => l.name === name)?.key).toBe('127.0.0.1:8080');
  });

  // systemd-analyze verify works without systemd as PID 1. It prints problems and may still exit 0
  // (an unknown key is only a warning), so its output is what is checked. Two messages are expected
  // on a machine that is not the target: Baton is not installed at /usr/local/bin/baton, and
  // systemd < 253 does not know Type=notify-reload yet.
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  const version = Number(/systemd (\d+)/.exec(analyze.stdout ?? '')?.[1] ?? 0);
  it.skipIf(analyze.status !== 0)('the units pass systemd-analyze verify (skipped where systemd-analyze is not installed)', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'units-'));
    for (const f of ['baton.service', 'baton.socket']) fs.copyFileSync(path.join(systemdDir, f), path.join(dir, f));
    const run = spawnSync('systemd-analyze', ['verify', path.join(dir, 'baton.service'), path.join(dir, 'baton.socket')], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    const expected = [
      /Command \/usr\/local\/bin\/baton is not executable/,
      ...(version < 253 ? [/Failed to parse service type, ignoring: notify-reload/] : []),
    ];
    const problems = `${run.stdout}\n${run.stderr}`
      .split('\n')
      .filter((line) => line.trim() !== '' && !expected.some((re) => re.test(line)));
    expect(problems).toEqual([]);
  });
});

function writeTemp(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}
