/** The proxy's stats, Envoy-style names, registered once per listener and cluster. */
import type { Counter, Gauge, Histogram } from '../../shared/stats/index.ts';
import { TIME_BOUNDS_MS, type StatsStore } from './stats-store.ts';

/** A listener or cluster name as a stat name segment: characters other than letters, digits and `_` become `_`. */
export function statSegment(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_');
}

export interface ListenerStats {
  cxTotal: Counter;
  cxActive: Gauge;
  /** Connections the lean HTTP/1.1 path handed to node:http (downstream-h1.ts). */
  cxFallback: Counter;
}

export function listenerStats(store: StatsStore, name: string): ListenerStats {
  return {
    cxTotal: store.counter(`listener.${statSegment(name)}.downstream_cx_total`),
    cxActive: store.gauge(`listener.${statSegment(name)}.downstream_cx_active`),
    cxFallback: store.counter(`listener.${statSegment(name)}.downstream_cx_fallback`),
  };
}

export interface HttpStats {
  rqTotal: Counter;
  rqActive: Gauge;
  /** Index: status class 1…5. */
  rqClass: Counter[];
  rqTime: Histogram;
  /** Requests the proxy refused as malformed (400) or with oversized headers (431). */
  rqRejected: Counter;
  noRoute: Counter;
}

export function httpStats(store: StatsStore, name: string): HttpStats {
  const p = `http.${statSegment(name)}`;
  const rqClass = [0, 1, 2, 3, 4, 5].map((c) => store.counter(`${p}.downstream_rq_${c === 0 ? 1 : c}xx`));
  return {
    rqTotal: store.counter(`${p}.downstream_rq_total`),
    rqActive: store.gauge(`${p}.downstream_rq_active`),
    rqClass,
    rqTime: store.histogram(`${p}.downstream_rq_time`, TIME_BOUNDS_MS),
    rqRejected: store.counter(`${p}.downstream_rq_rejected`),
    noRoute: store.counter(`${p}.no_route`),
  };
}

export interface ClusterStats {
  rqTotal: Counter;
  rqActive: Gauge;
  rqPending: Gauge;
  rqPendingOverflow: Counter;
  rqTimeout: Counter;
  rqRetry: Counter;
  rqClass: Counter[];
  rqTime: Histogram;
  cxTotal: Counter;
  cxActive: Gauge;
  cxConnectFail: Counter;
  noHealthyUpstream: Counter;
  hcAttempt: Counter;
  hcFailure: Counter;
  hcHealthy: Gauge;
}

export function clusterStats(store: StatsStore, name: string): ClusterStats {
  const p = `cluster.${statSegment(name)}`;
  return {
    rqTotal: store.counter(`${p}.upstream_rq_total`),
    rqActive: store.gauge(`${p}.upstream_rq_active`),
    rqPending: store.gauge(`${p}.upstream_rq_pending_active`),
    rqPendingOverflow: store.counter(`${p}.upstream_rq_pending_overflow`),
    rqTimeout: store.counter(`${p}.upstream_rq_timeout`),
    rqRetry: store.counter(`${p}.upstream_rq_retry`),
    rqClass: [0, 1, 2, 3, 4, 5].map((c) => store.counter(`${p}.upstream_rq_${c === 0 ? 1 : c}xx`)),
    rqTime: store.histogram(`${p}.upstream_rq_time`, TIME_BOUNDS_MS),
    cxTotal: store.counter(`${p}.upstream_cx_total`),
    cxActive: store.gauge(`${p}.upstream_cx_active`),
    cxConnectFail: store.counter(`${p}.upstream_cx_connect_fail`),
    noHealthyUpstream: store.counter(`${p}.upstream_cx_none_healthy`),
    hcAttempt: store.counter(`${p}.health_check.attempt`),
    hcFailure: store.counter(`${p}.health_check.failure`),
    hcHealthy: store.gauge(`${p}.health_check.healthy`),
  };
}

/** Status class index 1…5 of a status code. */
export function statusClass(status: number): number {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c : 5;
}
