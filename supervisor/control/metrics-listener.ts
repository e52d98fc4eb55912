/**
 * The Prometheus listener: the supervisor's /metrics over TCP for scrapers that cannot reach the
 * control socket (a Prometheus in another container or pod), and the memory dashboard with the
 * series it draws. Read-only by construction: it answers GET and HEAD of those paths and nothing
 * else, so opening it beyond the owner never opens a way to reload, stop or profile the supervisor.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Address } from '../../shared/address.ts';
import { BatonError } from '../../shared/errors.ts';
import { nodeHttp } from '../../shared/node-http.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../../shared/stats/index.ts';
import { handleControl, metricsText, type ControlTarget } from './api.ts';

/** What else is served, through the control API's own GET handlers: the dashboard and its data. */
const READ_ONLY = new Set(['/dashboard', '/dashboard/uplot.js', '/dashboard/uplot.css', '/dashboard/app.js', '/memory/series']);

/** Most scrapers connected at once; more are refused until one leaves. */
const MAX_CONNECTIONS = 32;
/** A scraper that does not finish its request in this long is cut off (slowloris). */
const REQUEST_TIMEOUT_MS = 10_000;

/** Serves GET /metrics on a TCP address. */
export class MetricsListener {
  private readonly server: http.Server;
  private readonly address: Address & { kind: 'tcp' };
  private readonly log: Logger;

  constructor(address: Address & { kind: 'tcp' }, target: ControlTarget, log: Logger) {
    this.address = address;
    this.log = log;
    this.server = nodeHttp.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      const served = path === '/metrics' || (READ_ONLY.has(path) && target.memorySeries !== undefined);
      if (!served) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: this listener serves GET /metrics, /dashboard and /memory/series only\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end(`${req.method} not allowed: ${path} is read-only\n`);
        return;
      }
      if (path !== '/metrics') return void this.readOnly(target, req, res);
      let body: string;
      try {
        body = metricsText(target);
      } catch (err) {
        this.log.warn({ err }, 'metrics listener: reading the stats failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('reading the stats failed\n');
        return;
      }
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  private readOnly(target: ControlTarget, req: http.IncomingMessage, res: http.ServerResponse): void {
    handleControl(target, 'GET', req.url ?? '/').then(
      (reply) => {
        const text = typeof reply.body === 'string' ? reply.body : `${JSON.stringify(reply.body)}\n`;
        const type = reply.contentType ?? 'application/json';
        res.writeHead(reply.status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        this.log.warn({ err, url: req.url }, 'metrics listener: a read-only request failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('failed\n');
      },
    );
  }

  /** Binds the address; ERR_LISTENER saying which address and why when it cannot. */
  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new BatonError('ERR_LISTENER', `cannot listen for metrics on ${this.address.host}:${this.address.port}: ${err.code ?? err.message}`, { cause: err }));
      };
      this.server.once('error', onError);
      this.server.listen({ host: this.address.host, port: this.address.port }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const bound = this.server.address() as AddressInfo;
    this.log.info({ metrics: `${bound.address}:${bound.port}` }, 'metrics listener ready');
    return bound;
  }

  /** Stops listening and drops open scrapes. */
  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}
