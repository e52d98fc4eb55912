/** Reads and validates the proxy's configuration file; errors name the path in the file. */
import fs from 'node:fs';
import path from 'node:path';
import type * as v from 'valibot';
import type { SchemaProblem } from '../../shared/schema.ts';
import { isLocal, parseAddress } from '../../shared/address.ts';
import { readTokenFile } from '../admin/admin-access.ts';
import { lazyModule } from '../../shared/lazy-module.ts';
import { cached, store } from './config-cache.ts';
import type { AppConfig, ClusterConfig, fileSchema, HttpListenerConfig, TcpListenerConfig } from './config-schema.ts';
import { parseEndpoint, type Endpoint } from '../upstream/endpoint.ts';
import { loadTls, type TlsMaterial } from '../tls/tls-load.ts';

/** What the schema makes of a file. */
type FileConfig = v.InferOutput<typeof fileSchema>;

// yaml and the schema (valibot) are loaded only when a file is checked in full: a generation started
// on the file the previous one checked takes the schema's output from config-cache.ts instead.
const yaml = lazyModule<typeof import('yaml')>(import.meta.url, 'yaml');
const schema = lazyModule<typeof import('./config-schema.ts')>(import.meta.url, './config-schema');

/** A configuration error: `message` lists each problem as `path: problem`. Exit code 2. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
}

export type ListenerSpec =
  | ({ name: string; address: string } & HttpListenerConfig)
  | ({ name: string; address: string } & TcpListenerConfig)
  | { name: string; address: string; protocol: 'admin' };

export interface ClusterSpec extends ClusterConfig {
  name: string;
  parsedEndpoints: Endpoint[];
}

/** A validated proxy configuration. */
export interface ProxyConfig {
  file: string;
  listeners: ListenerSpec[];
  clusters: ClusterSpec[];
  accessLog: AppConfig['access_log'];
  /** Certificates, keys and TLS options, read and checked with the file. */
  tls: TlsMaterial;
  /** The file's `app:` as written, for /config_dump. */
  raw: unknown;
  /** The admin listener's bearer token (from `app.admin.token_file`); never dumped. */
  adminToken?: Buffer;
}

/**
 * Reads `file` and validates it; throws ConfigError. `cache: false` checks the file in full and
 * stores nothing, whatever is cached for the same text (config-cache.ts). @default cache true
 */
export function loadConfig(file: string, options: { cache?: boolean } = {}): ProxyConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const useCache = options.cache !== false;
  const hit = useCache ? cached(text) : undefined;
  if (hit) return completeConfig(hit.data as FileConfig, hit.rawApp, file);
  const doc = yaml().parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigError(`invalid YAML in ${file}:\n${doc.errors.map((e) => `  ${e.message.split('\n')[0]}`).join('\n')}`);
  }
  const raw: unknown = doc.toJS();
  const data = checkSchema(raw, file);
  const rawApp = (raw as { app?: unknown } | null)?.app;
  const config = completeConfig(data, rawApp, file);
  if (useCache) store(text, { data, rawApp });
  return config;
}

/** Validates a parsed file (`{ listeners, app, … }`); `file` names it in errors and anchors relative paths. */
export function validateProxyConfig(raw: unknown, file: string): ProxyConfig {
  return completeConfig(checkSchema(raw, file), (raw as { app?: unknown } | null)?.app, file);
}

function checkSchema(raw: unknown, file: string): FileConfig {
  const result = schema().checkFile(raw ?? {});
  if (!result.success) throw new ConfigError(describe(file, result.problems));
  return result.output;
}

/** What follows the schema: listener and cluster names, the admin listener and token, endpoints, TLS material. */
function completeConfig(data: FileConfig, rawApp: unknown, file: string): ProxyConfig {
  const { listeners: declared, app } = data;
  const problems: string[] = [];
  const addresses = new Map<string, string>();
  for (const l of declared) if (l.name !== undefined) addresses.set(l.name, l.address);

  const listeners: ListenerSpec[] = [];
  let adminToken: Buffer | undefined;
  for (const [name, l] of Object.entries(app.listeners)) {
    const address = addresses.get(name);
    if (address === undefined) problems.push(`app.listeners.${name}: no listener named '${name}' in listeners`);
    else listeners.push({ name, address, ...l });
  }
  if (app.admin) {
    const address = addresses.get(app.admin.listener);
    if (address === undefined) problems.push(`app.admin.listener: no listener named '${app.admin.listener}' in listeners`);
    else if (app.listeners[app.admin.listener]) problems.push(`app.admin.listener: '${app.admin.listener}' is also in app.listeners`);
    else {
      let local = false;
      try {
        local = isLocal(parseAddress(address));
      } catch {
        problems.push(`app.admin.listener: listener '${app.admin.listener}' has an invalid address '${address}'`);
      }
      if (!local && !app.admin.allow_non_loopback) {
        problems.push(`app.admin.listener: '${address}' is not loopback (set app.admin.allow_non_loopback: true to allow it)`);
      }
      listeners.push({ name: app.admin.listener, address, protocol: 'admin' });
    }
    if (app.admin.token_file !== undefined) {
      try {
        adminToken = readTokenFile(path.resolve(path.dirname(file), app.admin.token_file));
      } catch (err) {
        problems.push(`app.admin.token_file: ${(err as Error).message}`);
      }
    }
  }

  const clusters: ClusterSpec[] = [];
  for (const [name, c] of Object.entries(app.clusters)) {
    const parsedEndpoints: Endpoint[] = [];
    c.endpoints.forEach((e, i) => {
      try {
        parsedEndpoints.push(parseEndpoint(e));
      } catch (err) {
        problems.push(`app.clusters.${name}.endpoints[${i}]: ${(err as Error).message}`);
      }
    });
    clusters.push({ ...c, name, parsedEndpoints });
  }
  const known = new Set(Object.keys(app.clusters));
  for (const [name, l] of Object.entries(app.listeners)) {
    if (l.protocol === 'tcp' && !known.has(l.cluster)) problems.push(`app.listeners.${name}.cluster: no cluster named '${l.cluster}'`);
    if (l.protocol === 'http') {
      l.routes.forEach((r, i) => {
        if (r.cluster !== undefined && !known.has(r.cluster)) {
          problems.push(`app.listeners.${name}.routes[${i}].cluster: no cluster named '${r.cluster}'`);
        }
      });
    }
  }
  const tls = problems.length > 0 ? undefined : loadTls(app.tls, listeners.filter((l) => l.protocol !== 'admin'), clusters, file, problems);
  if (problems.length > 0 || !tls) throw new ConfigError(`invalid proxy configuration in ${file}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  const accessLog = { ...app.access_log };
  if (!['stdout', 'stderr'].includes(accessLog.path)) accessLog.path = path.resolve(path.dirname(file), accessLog.path);
  return { file, listeners, clusters, accessLog, tls, raw: rawApp, ...(adminToken ? { adminToken } : {}) };
}

function describe(file: string, problems: SchemaProblem[]): string {
  const lines = problems.map((p) => `  ${formatPath(p.path)}: ${p.message}`);
  return `invalid proxy configuration in ${file}:\n${lines.join('\n')}`;
}

/** `app.clusters.api.endpoints[0]`. */
export function formatPath(p: readonly PropertyKey[]): string {
  if (p.length === 0) return '(top level)';
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}
