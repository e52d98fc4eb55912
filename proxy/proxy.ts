/**
 * One proxy generation: clusters (pools, balancing, health checks), the HTTP, TCP and admin
 * listeners on the sockets Baton holds, ready() once all of that is up, and a drain that lets
 * requests in flight finish before the upstream pools close.
 */
import type http from 'node:http';
import net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { generation, listen, onDrain, pacedClose, ready, shared } from '../child/index.ts';
import { packageVersion } from '../shared/package-root.ts';
import { createAccessLog, type AccessLog } from './telemetry/access-log.ts';
import { createAdminServer, type AdminTarget } from './admin/admin.ts';
import { adminAccess } from './admin/admin-access.ts';
import { Cluster } from './upstream/cluster.ts';
import type { ProxyConfig } from './config/config-load.ts';
import { startHealthChecks } from './upstream/health-share.ts';
import { countConnection, createHttpServer } from './http/http-listener.ts';
import { clusterStats, httpStats, listenerStats } from './telemetry/proxy-stats.ts';
import { Router } from './http/router.ts';
import { openStatsStore, type StatsStore } from './telemetry/stats-store.ts';
import { handleTcpConnection } from './tcp-proxy.ts';
// The TLS modules (and node:tls, https, http2 with them) are imported only by a configuration with TLS.
import type { CertWatch } from './tls/cert-watch.ts';
import type { TicketKeeper } from './tls/ticket-keys.ts';
import type { TlsHttpServer } from './tls/tls-server.ts';

export interface RunningProxy {
  config: ProxyConfig;
  store: StatsStore;
  clusters: Map<string, Cluster>;
  servers: Map<string, net.Server>;
  accessLog: AccessLog;
  admin: AdminTarget;
  /** Stops health checks and closes the upstream pools once no downstream connection is left. */
  drain(): Promise<void>;
}

// node:http through getBuiltinModule, not an ES import: that reads its lazy exports (http.WebSocket…),
// which load Node's own undici, http2 and tls into every generation (~40 ms of its start).
const { Server: HttpServer } = process.getBuiltinModule('node:http');

const VERSION = packageVersion();

/** The generation-wide admin state, in the SDK's shared values so that every worker answers alike. */
const HEALTH_KEY = 'proxy.health_check';
const LISTENERS_KEY = 'proxy.listeners';

export async function startProxy(config: ProxyConfig, log: Logger): Promise<RunningProxy> {
  const store = openStatsStore();
  const info = generation();
  const accessLog = createAccessLog(config.accessLog, info.generation);
  const clusters = new Map<string, Cluster>();
  for (const spec of config.clusters) clusters.set(spec.name, new Cluster(spec, clusterStats(store, spec.name), config.tls.clusters.get(spec.name)));
  for (const warning of config.tls.warnings) log.warn({ event: 'tls.certificate_warning' }, warning);
  // The shared ticket key is in place before the first handshake, so every session can resume on the next generation.
  const tickets: TicketKeeper | undefined = [...config.tls.listeners.values()].some((t) => t.config.session_tickets)
    ? await (await import('./tls/ticket-keys.ts')).shareTicketKeys(config.tls.app.ticket_key_rotation, log)
    : undefined;
  const tlsServer = config.tls.listeners.size > 0 ? await import('./tls/tls-server.ts') : undefined;
  const tlsServers: TlsHttpServer[] = [];

  // Gauges are summed over a generation's workers: a cluster's healthy endpoints are the health lead's to report.
  const healthChecks = await startHealthChecks(clusters.values(), log);

  let draining = false;
  let open = 0;
  let idle: (() => void) | undefined;
  const track = (socket: net.Socket): void => {
    open += 1;
    socket.once('close', () => {
      open -= 1;
      if (open === 0) idle?.();
    });
  };

  // WebSocket and TCP streams: at drain they are closed paced (spread over the last part of the
  // drain timeout) rather than all cut at its end, so their clients do not reconnect in one burst.
  const streams = new Set<net.Socket>();
  const stream = (socket: net.Socket): void => {
    streams.add(socket);
    socket.once('close', () => streams.delete(socket));
  };

  const servers = new Map<string, net.Server>();
  const stopAccepting = (): void => {
    for (const [name, server] of servers) {
      const spec = config.listeners.find((l) => l.name === name);
      if (spec?.protocol !== 'admin' && server.listening) net.Server.prototype.close.call(server);
    }
  };
  shared.onChange((key, value) => {
    if (key === LISTENERS_KEY && value === 'drained') stopAccepting();
  });
  const admin: AdminTarget = {
    store,
    version: VERSION,
    info: () => generation(),
    state: () => (draining ? 'DRAINING' : 'LIVE'),
    healthFailing: () => shared.get(HEALTH_KEY) === 'fail',
    setHealthFailing: (failing) => shared.set(HEALTH_KEY, failing ? 'fail' : 'ok'),
    drainListeners: () => shared.set(LISTENERS_KEY, 'drained'),
    configDump: () => ({ file: config.file, listeners: config.listeners, clusters: config.clusters.map(({ parsedEndpoints: _p, ...c }) => c), access_log: config.accessLog }),
  };

  for (const spec of config.listeners) {
    let server: net.Server;
    if (spec.protocol === 'admin') server = createAdminServer(admin, adminAccess(spec.address, config.adminToken));
    else if (spec.protocol === 'http') {
      const cx = listenerStats(store, spec.name);
      const material = config.tls.listeners.get(spec.name);
      const ctx = {
        listener: spec.name,
        router: new Router(spec.routes),
        clusters,
        stats: httpStats(store, spec.name),
        accessLog,
        streamIdleTimeout: spec.stream_idle_timeout,
        ...(spec.health_path !== undefined ? { healthPath: spec.health_path } : {}),
        healthFailing: () => admin.healthFailing(),
      };
      if (material && tlsServer) {
        const t = tlsServer.createTlsHttpServer(spec, material, ctx, cx, store);
        tlsServers.push(t);
        server = t.server;
        if (material.config.session_tickets) tickets?.add(server as tls.Server);
      } else server = createHttpServer(spec, ctx, cx);
      server.on('connection', track);
      server.on('upgrade', (_req: unknown, socket: net.Socket) => stream(socket));
    } else {
      const cx = listenerStats(store, spec.name);
      const ctx = { listener: spec.name, cluster: clusters.get(spec.cluster) as Cluster, accessLog, idleTimeout: spec.idle_timeout };
      const material = config.tls.listeners.get(spec.name);
      if (material && tlsServer) {
        server = tlsServer.createTlsTcpServer(spec.name, material, store, (socket) => handleTcpConnection(ctx, socket));
        server.on('connection', (socket: net.Socket) => {
          countConnection(cx, socket);
          track(socket);
          stream(socket);
        });
        if (material.config.session_tickets) tickets?.add(server as tls.Server);
      } else {
        server = net.createServer((socket) => {
          countConnection(cx, socket);
          track(socket);
          stream(socket);
          handleTcpConnection(ctx, socket);
        });
      }
    }
    await listen({ name: spec.name, address: spec.address }, server);
    servers.set(spec.name, server);
    const where = server.address();
    log.info({ listener: spec.name, protocol: spec.protocol, address: typeof where === 'string' ? where : `${where?.address}:${where?.port}` }, `proxy listener ${spec.name} (${spec.protocol}) listening`);
  }

  // A worker restarted in a generation told to stop accepting (its hello may also come later: onChange).
  if (shared.get(LISTENERS_KEY) === 'drained') stopAccepting();

  const drain = async (): Promise<void> => {
    if (draining) return;
    draining = true;
    watch?.stop();
    tickets?.stop();
    for (const t of tlsServers) t.draining();
    healthChecks.stop();
    // The serving generation's view of its clusters is the one that counts; a gauge sums over generations.
    for (const c of clusters.values()) c.stats.hcHealthy.set(0);
    void pacedClose(streams);
    if (open > 0) await new Promise<void>((resolve) => (idle = resolve));
    await Promise.all([...clusters.values()].map((c) => c.close()));
    accessLog.flush();
  };
  const watched = config.tls.watched;
  const certWatch = watched.files.length > 0 && info.supervised ? await import('./tls/cert-watch.ts') : undefined;
  onDrain(drain);
  ready();
  log.info({ listeners: config.listeners.length, clusters: clusters.size }, 'proxy ready');
  const watch: CertWatch | undefined = certWatch?.watchCertificates(watched.files, watched.digest, config.tls.app.watch_debounce, log);
  return { config, store, clusters, servers, accessLog, admin, drain };
}

/** For tests and tools: an http.Server type guard. */
export function isHttpServer(s: net.Server): s is http.Server {
  return s instanceof HttpServer;
}
