/** The admin listener (loopback or a Unix socket; see admin-access.ts for who may use it): stats, memory, server info, readiness, health-check and drain controls, config dump. */
import type http from 'node:http';
import { lazyModule } from '../../shared/lazy-module.ts';
import type { PrometheusOptions, StatSample } from '../../shared/stats/index.ts';
import { refusal, type AdminAccess } from './admin-access.ts';
import { parseStatFilter } from './stat-filter.ts';
import type { StatsStore } from '../telemetry/stats-store.ts';

// node:http through getBuiltinModule, not an ES import: that reads its lazy exports (http.WebSocket…),
// which load Node's own undici, http2 and tls into every generation (~40 ms of its start).
const { createServer } = process.getBuiltinModule('node:http');
/** The text exposition, loaded at the first /stats request: nothing of it is needed to serve. */
const exposition = lazyModule<typeof import('../../shared/stats/exposition.ts')>(import.meta.url, '../../shared/stats/exposition');

export interface AdminTarget {
  store: StatsStore;
  version: string;
  info(): { generation: number; worker: number; instance: string; supervised: boolean; startedAt: number };
  state(): 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING';
  /** True after /healthcheck/fail (by whichever worker of the generation took it), until /healthcheck/ok. */
  healthFailing(): boolean;
  /** Fails (or passes again) the health path of every worker of the generation; resolves once each has it. */
  setHealthFailing(failing: boolean): Promise<void>;
  /** Stops every worker of the generation accepting on its proxy listeners (not the admin one); resolves once each was told. */
  drainListeners(): Promise<void>;
  configDump(): unknown;
  /** Refreshes gauges computed on demand before a stats read. */
  refreshStats?(): void;
}

const ENDPOINTS: Record<string, { method: 'GET' | 'POST'; help: string }> = {
  '/': { method: 'GET', help: 'this list' },
  '/stats': { method: 'GET', help: 'every stat as JSON (?filter=GLOB)' },
  '/stats/prometheus': { method: 'GET', help: 'every stat in Prometheus text format (?filter=GLOB)' },
  '/memory': { method: 'GET', help: "the answering worker's process memory (bytes)" },
  '/server_info': { method: 'GET', help: 'version, generation, state, uptime, hot-restart version' },
  '/ready': { method: 'GET', help: '200 LIVE when serving, else 503 with the state' },
  '/healthcheck/fail': { method: 'POST', help: "make the listeners' health_path answer 503" },
  '/healthcheck/ok': { method: 'POST', help: "make the listeners' health_path answer 200 again" },
  '/drain_listeners': { method: 'POST', help: 'stop accepting on every proxy listener of this generation' },
  '/config_dump': { method: 'GET', help: 'the configuration in effect, as JSON' },
};

/** The admin HTTP server; `access` decides who is answered (POSTs change behaviour, GETs read). */
export function createAdminServer(target: AdminTarget, access: AdminAccess): http.Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const endpoint = ENDPOINTS[url.pathname];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
    };
    const json = (status: number, value: unknown): void => send(status, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
    if (!endpoint) return json(404, { error: `no admin endpoint ${url.pathname}`, endpoints: ENDPOINTS });
    if (req.method !== endpoint.method && !(endpoint.method === 'GET' && req.method === 'HEAD')) {
      res.setHeader('allow', endpoint.method);
      return json(405, { error: `${url.pathname} takes ${endpoint.method}` });
    }
    const refused = refusal(access, req, endpoint.method === 'POST');
    if (refused) return json(refused.status, { error: refused.error });
    let filter: ((name: string) => boolean) | undefined;
    const f = url.searchParams.get('filter');
    if (f) {
      const parsed = parseStatFilter(f);
      if ('error' in parsed) return json(400, { error: `bad filter: ${parsed.error}` });
      filter = parsed.match;
    }
    const snapshot = (): StatSample[] => {
      target.refreshStats?.();
      const all = target.store.snapshot();
      return filter ? all.filter((s) => filter(s.name)) : all;
    };
    const info = target.info();
    switch (url.pathname) {
      case '/':
        return json(200, ENDPOINTS);
      case '/stats':
        return send(200, 'application/json', exposition().toJSON(snapshot(), 2));
      case '/stats/prometheus':
        return send(200, exposition().PROMETHEUS_CONTENT_TYPE, exposition().toPrometheus(snapshot(), prometheusOptions(target.store)));
      case '/memory':
        // One worker's figures, named: the generation's are `baton memory` (the supervisor reads every worker).
        return json(200, { ...process.memoryUsage(), heap: process.memoryUsage().heapUsed, worker: info.worker, pid: process.pid });
      case '/server_info':
        return json(200, {
          version: target.version,
          state: target.state(),
          generation: info.generation,
          worker: info.worker,
          instance: info.instance,
          supervised: info.supervised,
          pid: process.pid,
          node: process.version,
          uptime_current_epoch: Math.round((Date.now() - info.startedAt) / 1000),
          uptime_process_ms: Math.round(process.uptime() * 1000),
          hot_restart_version: target.store.version(),
          health_check_failing: target.healthFailing(),
        });
      case '/ready': {
        const state = target.state();
        return send(state === 'LIVE' ? 200 : 503, 'text/plain; charset=utf-8', `${state}\n`);
      }
      case '/healthcheck/fail':
      case '/healthcheck/ok':
      case '/drain_listeners': {
        // The whole generation's answer, not this worker's: the OK comes once every worker holds the change.
        const done = url.pathname === '/drain_listeners' ? target.drainListeners() : target.setHealthFailing(url.pathname === '/healthcheck/fail');
        done.then(
          () => send(200, 'text/plain; charset=utf-8', 'OK\n'),
          (err: Error) => json(500, { error: `${url.pathname} failed: ${err.message}` }),
        );
        return;
      }
      case '/config_dump':
        return json(200, target.configDump());
    }
  });
}

/** The generation table, when the store has one, so memory gauges are labelled by generation rather than writer slot. */
function prometheusOptions(store: StatsStore): PrometheusOptions {
  const generations = store.generations?.() ?? [];
  return generations.length > 0 ? { generations } : {};
}
