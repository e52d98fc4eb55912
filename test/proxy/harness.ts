// A Baton running the proxy, on fresh loopback ports, with upstreams started by the test.
import http from 'node:http';
import net from 'node:net';
import { BatonProcess } from '../helpers/baton.ts';
import { freePort } from '../helpers/ports.ts';
import { proxyCommand } from './upstreams.ts';

export interface ProxyFile {
  listeners: { name: string; address: string; mode?: string }[];
  app: Record<string, unknown>;
  [key: string]: unknown;
}

/** Starts `baton run` with the proxy as its program; `file(dir)` gives listeners and app. */
export function startProxyBaton(file: ProxyFile, env: Record<string, string> = {}): BatonProcess {
  return new BatonProcess((dir) => fileFor(`${dir}/baton.yaml`, file), [], env);
}

/** Waits until generation `n` is active; else fails with the proxy's stderr, which says why. */
export async function activeProxy(baton: BatonProcess, n = 1): Promise<void> {
  await baton.active(n).catch((err: unknown) => {
    throw new Error(`${String(err)}\nstderr: ${baton.stderr.join('')}`);
  });
}

export function fileFor(configPath: string, file: ProxyFile): Record<string, unknown> {
  return {
    name: 'proxy',
    command: proxyCommand(configPath),
    'ready-timeout': '20s',
    'drain-timeout': '8s',
    'shutdown-timeout': '2s',
    ...file,
  };
}

export async function addresses(...names: string[]): Promise<Record<string, { name: string; address: string; port: number }>> {
  const out: Record<string, { name: string; address: string; port: number }> = {};
  for (const name of names) {
    const port = await freePort();
    out[name] = { name, address: `127.0.0.1:${port}`, port };
  }
  return out;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  trailers: NodeJS.Dict<string>;
}

/** One request on loopback (a fresh connection unless an agent is given). */
export function request(port: number, options: http.RequestOptions & { body?: Buffer | string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const { body, ...rest } = options;
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...rest }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `raw` on a new connection and resolves with everything the server sent until it closed. */
export function rawExchange(port: number, raw: string | Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(raw));
    s.setTimeout(timeoutMs, () => s.destroy(new Error('no close within the timeout')));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', reject);
  });
}

/** A stat's value from the admin listener's /stats. */
export async function statValue(adminPort: number, name: string): Promise<number> {
  // A filter without wildcards matches that name only.
  const r = await request(adminPort, { path: `/stats?filter=${encodeURIComponent(name)}` });
  const parsed = JSON.parse(r.body.toString()) as { stats: { name: string; value?: number; count?: number }[] };
  const s = parsed.stats.find((x) => x.name === name);
  return s?.value ?? s?.count ?? NaN;
}

export interface UploadCounts {
  requests: number;
  ok: number;
  failures: string[];
}

/**
 * Clients that POST `bodyBytes` to /echo in a loop (keep-alive or a connection per request) and
 * check the whole body comes back; bounded by `maxMs`. stop() resolves with the counts.
 */
export function startUploads(port: number, options: { keepAlive: number; newConnection: number; bodyBytes: number; maxMs?: number }): { counts: UploadCounts; stop(): Promise<UploadCounts> } {
  const counts: UploadCounts = { requests: 0, ok: 0, failures: [] };
  const deadline = Date.now() + (options.maxMs ?? 60_000);
  let stopped = false;
  const body = Buffer.alloc(options.bodyBytes, 'u');
  const agents: http.Agent[] = [];
  const client = async (agent: http.Agent | false): Promise<void> => {
    while (!stopped && Date.now() < deadline) {
      counts.requests += 1;
      try {
        const r = await request(port, { method: 'POST', path: '/echo', agent, body, headers: agent ? {} : { connection: 'close' } });
        if (r.status === 200 && r.body.length === body.length) counts.ok += 1;
        else counts.failures.push(`status ${r.status}, ${r.body.length} bytes`);
      } catch (err) {
        counts.failures.push(`${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
      }
    }
  };
  const running: Promise<void>[] = [];
  for (let i = 0; i < options.keepAlive; i++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    running.push(client(agent));
  }
  for (let i = 0; i < options.newConnection; i++) running.push(client(false));
  return {
    counts,
    async stop() {
      stopped = true;
      await Promise.all(running);
      for (const a of agents) a.destroy();
      return counts;
    },
  };
}
