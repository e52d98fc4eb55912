/** A TCP listener: each connection is piped to an endpoint of its cluster (another one if the connect fails). */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { AccessLog } from './telemetry/access-log.ts';
import type { Cluster, UpstreamHost } from './upstream/cluster.ts';

export interface TcpContext {
  listener: string;
  cluster: Cluster;
  accessLog: AccessLog;
  idleTimeout: number;
}

export function handleTcpConnection(ctx: TcpContext, downstream: net.Socket): void {
  const start = performance.now();
  const { cluster } = ctx;
  downstream.pause();
  downstream.setNoDelay(true);
  let closed = false;
  downstream.once('close', () => (closed = true));
  downstream.on('error', () => {});
  const log = (host: UpstreamHost | undefined, bytesOut: number, bytesIn: number, error?: string): void => {
    ctx.accessLog.log({
      listener: ctx.listener,
      bytes: bytesOut,
      bytes_in: bytesIn,
      duration_ms: Math.round(performance.now() - start),
      cluster: cluster.name,
      ...(host ? { upstream: host.key } : {}),
      ...(error ? { error } : {}),
    });
  };
  const connect = (host: UpstreamHost | undefined, attemptsLeft: number): void => {
    if (!host) {
      log(undefined, 0, 0, 'no healthy upstream');
      downstream.destroy();
      return;
    }
    const e = host.endpoint;
    cluster.stats.rqTotal.inc();
    const upstream = e.kind === 'unix' ? net.connect(e.path) : net.connect(e.port, e.host);
    const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), cluster.spec.connect_timeout);
    host.active += 1;
    let connected = false;
    upstream.once('connect', () => {
      clearTimeout(timer);
      connected = true;
      if (closed) return upstream.destroy();
      cluster.stats.cxTotal.inc();
      cluster.stats.cxActive.inc();
      upstream.setNoDelay(true);
      downstream.setTimeout(ctx.idleTimeout, () => downstream.destroy());
      downstream.pipe(upstream);
      upstream.pipe(downstream);
      downstream.resume();
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (connected) return downstream.destroy();
      cluster.stats.cxConnectFail.inc();
      host.active -= 1;
      if (attemptsLeft > 1 && !closed) connect(cluster.pick(host), attemptsLeft - 1);
      else {
        log(host, 0, 0, `upstream connect error: ${err.code ?? err.message}`);
        downstream.destroy();
      }
    });
    upstream.once('close', () => {
      if (!connected) return;
      host.active -= 1;
      cluster.stats.cxActive.dec();
      log(host, upstream.bytesRead, upstream.bytesWritten);
      downstream.end();
    });
    // 'close' comes once both directions are done (a half-close travels through the pipes).
    downstream.once('close', () => upstream.destroy());
  };
  connect(cluster.pick(), 2);
}
