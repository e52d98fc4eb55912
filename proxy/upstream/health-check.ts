/**
 * Active health checks: each endpoint is probed every `interval` (HTTP GET of `path` through its
 * pool, or a TCP connect); `unhealthy_threshold` failures in a row take it out of load balancing,
 * `healthy_threshold` successes bring it back. The first probe decides at once, so a generation
 * starting next to a dead endpoint never sends it traffic.
 */
import net from 'node:net';
import type { HealthCheckConfig } from '../config/config-schema.ts';
import type { Dispatcher } from 'undici';
import type { Cluster, UpstreamHost } from './cluster.ts';

export type HealthLog = (event: { cluster: string; endpoint: string; healthy: boolean; reason: string }) => void;

export class HealthChecker {
  private readonly cluster: Cluster;
  private readonly config: HealthCheckConfig;
  private readonly log: HealthLog;
  /** Each host's next round: one at most, so checking stopped and started again never doubles a host's rounds. */
  private readonly timers = new Map<UpstreamHost, NodeJS.Timeout>();
  private readonly streaks = new Map<UpstreamHost, { ok: number; fail: number; checked: boolean }>();
  private stopped = false;
  private checking = false;
  private reportsGauge: boolean;

  /** `reportsGauge: false` leaves the cluster's healthy gauge to another worker (health-share.ts). */
  constructor(cluster: Cluster, config: HealthCheckConfig, log: HealthLog, options: { reportsGauge?: boolean } = {}) {
    this.cluster = cluster;
    this.config = config;
    this.log = log;
    this.reportsGauge = options.reportsGauge ?? true;
  }

  /** Runs the first round of probes (resolves when each has an answer); with `keepChecking` (the default) schedules the next. */
  async start(keepChecking = true): Promise<void> {
    this.checking = keepChecking;
    await Promise.all(this.cluster.hosts.map((h) => this.round(h)));
  }

  get hostCount(): number {
    return this.cluster.hosts.length;
  }

  /** Schedules the rounds after the first, for a checker started without them or told to stop. */
  keepChecking(): void {
    if (this.checking) return;
    this.checking = true;
    for (const host of this.cluster.hosts) this.schedule(host);
  }

  /** No more rounds until keepChecking(); a probe in flight still counts, and the state stays as it is. */
  stopChecking(): void {
    this.checking = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Whether this worker reports the cluster's healthy gauge (summed over workers): off, it contributes 0. */
  setReportsGauge(on: boolean): void {
    this.reportsGauge = on;
    this.cluster.stats.hcHealthy.set(on ? this.cluster.healthyCount : 0);
  }

  /** Takes another worker's view of the endpoints (one flag per host, in order); changes are not logged, that worker did. */
  adopt(healthy: readonly boolean[]): void {
    this.cluster.hosts.forEach((host, i) => {
      if (healthy[i] !== undefined) host.healthy = healthy[i];
    });
    if (this.reportsGauge) this.cluster.stats.hcHealthy.set(this.cluster.healthyCount);
  }

  stop(): void {
    this.stopped = true;
    this.stopChecking();
  }

  private async round(host: UpstreamHost): Promise<void> {
    if (this.stopped) return;
    const { stats } = this.cluster;
    stats.hcAttempt.inc();
    const reason = await this.probe(host).then(
      () => undefined,
      (err: Error) => err.message,
    );
    if (reason !== undefined) stats.hcFailure.inc();
    if (this.stopped) return;
    this.record(host, reason);
    if (this.checking) this.schedule(host);
  }

  private schedule(host: UpstreamHost): void {
    if (this.stopped) return;
    clearTimeout(this.timers.get(host));
    const timer = setTimeout(() => {
      this.timers.delete(host);
      void this.round(host);
    }, this.config.interval);
    timer.unref();
    this.timers.set(host, timer);
  }

  private record(host: UpstreamHost, reason: string | undefined): void {
    const s = this.streaks.get(host) ?? { ok: 0, fail: 0, checked: false };
    this.streaks.set(host, s);
    const first = !s.checked;
    s.checked = true;
    if (reason === undefined) {
      s.ok += 1;
      s.fail = 0;
      if (!host.healthy && s.ok >= this.config.healthy_threshold) this.set(host, true, 'passed health checks');
    } else {
      s.fail += 1;
      s.ok = 0;
      if (host.healthy && (first || s.fail >= this.config.unhealthy_threshold)) this.set(host, false, reason);
    }
  }

  private set(host: UpstreamHost, healthy: boolean, reason: string): void {
    host.healthy = healthy;
    if (this.reportsGauge) this.cluster.stats.hcHealthy.set(this.cluster.healthyCount);
    this.log({ cluster: this.cluster.name, endpoint: host.key, healthy, reason });
  }

  private async probe(host: UpstreamHost): Promise<void> {
    const { path, timeout } = this.config;
    if (path === undefined) return connectProbe(host, timeout);
    const status = await httpProbe(host, path, timeout);
    const expected = this.config.expected_statuses;
    const ok = expected ? expected.includes(status) : status >= 200 && status < 300;
    if (!ok) throw new Error(`health check ${path} answered ${status}`);
  }
}

/**
 * GET `path` through the endpoint's pool, the body read and dropped; resolves with the status.
 * Through dispatch(), the pool's own method: request() is what undici's index adds to every
 * dispatcher, and the proxy loads its Pool without the index (cluster.ts).
 */
function httpProbe(host: UpstreamHost, path: string, timeout: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let settled = false;
    let controller: Dispatcher.DispatchController | undefined;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(status);
    };
    const timer = setTimeout(() => {
      const err = new Error(`health check timed out after ${timeout} ms`);
      controller?.abort(err);
      settle(err);
    }, timeout);
    host.pool.dispatch(
      { path, method: 'GET', headers: { 'user-agent': 'baton-proxy-health-check' } },
      {
        onRequestStart(c) {
          controller = c;
          if (settled) c.abort(new Error('health check stopped'));
        },
        onResponseStart(_c, statusCode) {
          if (statusCode >= 200) status = statusCode;
        },
        onResponseData() {},
        onResponseEnd() {
          settle();
        },
        onResponseError(_c, error) {
          settle(error);
        },
      },
    );
  });
}

function connectProbe(host: UpstreamHost, timeout: number): Promise<void> {
  const e = host.endpoint;
  return new Promise((resolve, reject) => {
    const socket = e.kind === 'unix' ? net.connect(e.path) : net.connect(e.port, e.host);
    socket.setTimeout(timeout, () => socket.destroy(new Error(`connect timed out after ${timeout} ms`)));
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}
