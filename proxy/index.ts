/** The proxy's modules, re-exported. The program is main.ts. */
export { createAccessLog, type AccessEntry, type AccessLog } from './access-log.ts';
export { createAdminServer, type AdminTarget } from './admin.ts';
export { Cluster, UpstreamHost, type Release } from './cluster.ts';
export { ConfigError, formatPath, loadConfig, validateProxyConfig, type ClusterSpec, type ListenerSpec, type ProxyConfig } from './config-load.ts';
export { appSchema, fileSchema, type AppConfig, type ClusterConfig, type HealthCheckConfig, type HttpListenerConfig, type RouteConfig, type TcpListenerConfig } from './config-schema.ts';
export { originOf, parseEndpoint, type Endpoint } from './endpoint.ts';
export { downstreamResponseHeaders, requestHead, requestIdOf, upstreamRequestHeaders, type ForwardInfo } from './headers.ts';
export { HealthChecker, type HealthLog } from './health-check.ts';
export { createRequestHandler, type HttpContext } from './http-forward.ts';
export { countConnection, createHttpServer } from './http-listener.ts';
export { LoadBalancer, type Balanced, type LbPolicy } from './load-balancer.ts';
export { clusterStats, httpStats, listenerStats, statSegment, statusClass, type ClusterStats, type HttpStats, type ListenerStats } from './proxy-stats.ts';
export { isHttpServer, startProxy, type RunningProxy } from './proxy.ts';
export { clientErrorStatus, isConnectFailure, reply, replyRaw, upstreamErrorReply } from './responses.ts';
export { hostName, Router, type Route } from './router.ts';
export { openStatsStore, TIME_BOUNDS_MS, type StatsStore } from './stats-store.ts';
export { handleTcpConnection, type TcpContext } from './tcp-proxy.ts';
export { createUpgradeHandler } from './upgrade.ts';
