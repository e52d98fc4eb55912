/**
 * A cluster: its endpoints (each an undici Pool of keep-alive connections), load balancing,
 * limits on requests in flight and waiting, and the stats they feed.
 */
import type { Pool } from 'undici';
import type { ClusterSpec } from '../config/config-load.ts';
import { originOf, type Endpoint } from './endpoint.ts';
import { LoadBalancer } from './load-balancer.ts';
import type { ClusterStats } from '../telemetry/proxy-stats.ts';
import type { UpstreamTls } from '../tls/tls-load.ts';
import { leanClientAvailable } from '../http/http1-parser.ts';
import { H1Pool } from './upstream-h1.ts';

/**
 * undici's Pool without undici's index, which loads all of undici (fetch, WebSocket, caches,
 * mocks: some 50 ms of CPU at every generation's start) for a class the proxy uses only through
 * dispatch(), the pool's own method. Its module sits where the package (it has no `exports` map)
 * has always kept it; should it move, the index it is.
 */
const PoolClass = ((): typeof Pool => {
  const load = process.getBuiltinModule('node:module').createRequire(import.meta.url);
  try {
    return load('undici/lib/dispatcher/pool.js') as typeof Pool;
  } catch {
    return (load('undici') as typeof import('undici')).Pool;
  }
})();

export class UpstreamHost {
  readonly endpoint: Endpoint;
  readonly pool: Pool;
  /** Requests without a body on a plain (not TLS) endpoint: the lean client (upstream-h1.ts). */
  readonly h1: H1Pool | undefined;
  healthy = true;
  active = 0;

  constructor(endpoint: Endpoint, spec: ClusterSpec, stats: ClusterStats, tls?: UpstreamTls) {
    this.endpoint = endpoint;
    this.pool = new PoolClass(tls ? originOf(endpoint).replace(/^http:/, 'https:') : originOf(endpoint), {
      connections: spec.max_connections,
      pipelining: 1,
      keepAliveTimeout: spec.idle_timeout,
      keepAliveMaxTimeout: Math.max(spec.idle_timeout, 1000),
      headersTimeout: spec.timeout,
      bodyTimeout: 0,
      connect: { timeout: spec.connect_timeout, ...(endpoint.kind === 'unix' ? { socketPath: endpoint.path } : {}), ...tls?.connect },
    });
    this.h1 = tls || !leanClientAvailable ? undefined : new H1Pool(endpoint, { connectTimeout: spec.connect_timeout, idleTimeout: spec.idle_timeout }, stats);
    this.pool.on('connect', () => {
      stats.cxTotal.inc();
      stats.cxActive.inc();
    });
    this.pool.on('disconnect', () => stats.cxActive.dec());
    this.pool.on('connectionError', () => stats.cxConnectFail.inc());
  }

  get key(): string {
    return this.endpoint.key;
  }
}

/** Released by the caller when its request is over (exactly once). */
export type Release = () => void;

export class Cluster {
  readonly name: string;
  readonly spec: ClusterSpec;
  readonly stats: ClusterStats;
  readonly hosts: UpstreamHost[];
  private readonly lb: LoadBalancer<UpstreamHost>;
  private active = 0;
  private readonly waiting: ((release: Release | undefined) => void)[] = [];
  private closed = false;

  constructor(spec: ClusterSpec, stats: ClusterStats, tls?: UpstreamTls) {
    this.name = spec.name;
    this.spec = spec;
    this.stats = stats;
    this.hosts = spec.parsedEndpoints.map((e) => new UpstreamHost(e, spec, stats, tls));
    this.lb = new LoadBalancer(spec.lb_policy, this.hosts);
  }

  /** A healthy host (other than `avoid` if possible), or undefined when none is healthy. */
  pick(avoid?: UpstreamHost): UpstreamHost | undefined {
    const host = this.lb.pick(avoid);
    if (!host) this.stats.noHealthyUpstream.inc();
    return host;
  }

  get healthyCount(): number {
    let n = 0;
    for (const h of this.hosts) if (h.healthy) n++;
    return n;
  }

  /**
   * A slot for one request: at once when fewer than max_connections are in flight, else after a
   * wait in the pending queue; undefined (overflow: answer 503) when the queue is full too.
   */
  acquire(): Release | Promise<Release | undefined> | undefined {
    if (this.active < this.spec.max_connections) return this.grant();
    if (this.waiting.length >= this.spec.max_pending_requests || this.closed) {
      this.stats.rqPendingOverflow.inc();
      return undefined;
    }
    this.stats.rqPending.inc();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private grant(): Release {
    this.active += 1;
    this.stats.rqActive.inc();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= 1;
      this.stats.rqActive.dec();
      const next = this.waiting.shift();
      if (next) {
        this.stats.rqPending.dec();
        next(this.grant());
      }
    };
  }

  get inFlight(): number {
    return this.active + this.waiting.length;
  }

  /** Closes the pools once their requests are done (graceful); `force` cuts them. */
  async close(force = false): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.hosts.flatMap((h) => [force ? h.pool.destroy() : h.pool.close(), ...(h.h1 ? [h.h1.close(force)] : [])]));
  }
}
