// TLS clients for the proxy tests: one HTTPS or HTTP/2 request, a bare handshake (which
// certificate, which version, resumed or not), and a load of HTTPS keep-alive, HTTPS
// new-connection and HTTP/2 clients that counts every failure.
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';

export interface TlsAnswer {
  status: number;
  /** HTTP/2: the stream's id and the code it was closed with. */
  streamId?: number;
  rstCode?: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request on a fresh connection (unless an agent is given), trusting `ca`. */
export function httpsRequest(port: number, options: https.RequestOptions & { ca: Buffer; body?: string; servername?: string }): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const { body, ...rest } = options;
    const req = https.request({ host: '127.0.0.1', port, agent: false, servername: options.servername ?? 'a.test', ...rest }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One request on an HTTP/2 session. */
export function h2Request(session: http2.ClientHttp2Session, path: string, options: { method?: string; body?: string | Buffer; headers?: http2.OutgoingHttpHeaders } = {}): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': options.method ?? 'GET', ...options.headers }, { endStream: options.body === undefined });
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h as Record<string, string | string[] | undefined>;
    });
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve({ status, headers, streamId: stream.id, rstCode: stream.rstCode, body: status === 0 ? `no response: stream ${stream.id} closed with code ${stream.rstCode}` : text }));
    stream.on('error', reject);
    if (options.body !== undefined) stream.end(options.body);
  });
}

/** An HTTP/2 session to the proxy (ALPN h2), resolved once connected. */
export function h2Connect(port: number, ca: Buffer, servername = 'a.test', extra: tls.ConnectionOptions = {}): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${servername}:${port}`, { ca, servername, host: '127.0.0.1', port, ...extra, createConnection: undefined } as http2.SecureClientSessionOptions);
    session.once('connect', () => {
      session.off('error', reject);
      resolve(session);
    });
    session.once('error', reject);
  });
}

export interface Handshake {
  subject: string;
  fingerprint: string;
  version: string | null;
  alpn: string | false | null;
  reused: boolean;
  session?: Buffer;
  authorized: boolean;
  error?: string;
}

/** A TLS handshake only (then a clean close): what the server presented. */
export function handshake(port: number, options: tls.ConnectionOptions & { servername?: string } = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    let result: Handshake | undefined;
    socket.on('session', (s: Buffer) => {
      if (result) result.session = s;
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      result = {
        subject: cert?.subject ?? '',
        fingerprint: cert?.fingerprint256 ?? '',
        version: socket.getProtocol(),
        alpn: socket.alpnProtocol,
        reused: socket.isSessionReused(),
        authorized: socket.authorized,
      };
      // TLS 1.3 sends its tickets after the handshake: read a moment so 'session' comes, then close.
      socket.write('GET /ticket HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n');
    });
    socket.on('data', () => {});
    socket.once('close', () => (result ? resolve(result) : reject(new Error('closed before the handshake'))));
    socket.once('error', (err) => (result ? resolve({ ...result, error: err.message }) : reject(err)));
  });
}

export interface TlsLoadCounts {
  requests: number;
  ok: number;
  failed: number;
  /** The first few failures. */
  failures: string[];
  /** HTTP/2 streams answered 200 (part of `ok`). */
  h2Ok: number;
  /** HTTP/2 sessions opened (a GOAWAY makes the client open another). */
  h2Sessions: number;
  /**
   * Request ids of HTTP/2 streams the server did not process, retried as a real client does and
   * as RFC 9113 allows (§8.7, §6.8): refused (REFUSED_STREAM — Node's client also reports so a
   * request it had queued when the GOAWAY came, and one above the GOAWAY's last stream id), or
   * ended without a response with an id above the last-stream-id of a GOAWAY on its session.
   * The tests check the proxy's access log saw none of them.
   */
  h2Unsent: string[];
}

/** HTTPS keep-alive, HTTPS new-connection and HTTP/2 clients looping on `/` until stopped. */
export function startTlsLoad(port: number, ca: Buffer, options: { keepAlive: number; newConnection: number; h2: number; h2Concurrency?: number; maxMs?: number }) {
  const counts: TlsLoadCounts = { requests: 0, ok: 0, failed: 0, failures: [], h2Ok: 0, h2Sessions: 0, h2Unsent: [] };
  const deadline = Date.now() + (options.maxMs ?? 60_000);
  let stopped = false;
  const agents: https.Agent[] = [];
  const sessions = new Set<http2.ClientHttp2Session>();
  const goneAway = new WeakSet<http2.ClientHttp2Session>();
  const lastProcessed = new WeakMap<http2.ClientHttp2Session, number>();
  let sequence = 0;
  const fail = (what: string): void => {
    counts.failed += 1;
    if (counts.failures.length < 20) counts.failures.push(what);
  };
  const running = (): boolean => !stopped && Date.now() < deadline;
  const httpsClient = async (agent: https.Agent | false): Promise<void> => {
    while (running()) {
      counts.requests += 1;
      try {
        const r = await httpsRequest(port, { ca, agent, path: '/', headers: agent ? {} : { connection: 'close' } });
        if (r.status === 200) counts.ok += 1;
        else fail(`https status ${r.status}`);
      } catch (err) {
        fail(`https ${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
      }
    }
  };
  const h2Client = async (): Promise<void> => {
    let session: http2.ClientHttp2Session | undefined;
    const worker = async (): Promise<void> => {
      while (running()) {
        if (!session || session.closed || session.destroyed || goneAway.has(session)) {
          try {
            const s = await h2Connect(port, ca);
            // Another worker may have connected meanwhile; keep the first.
            if (session && !session.closed && !session.destroyed && !goneAway.has(session)) s.close();
            else {
              session = s;
              sessions.add(s);
              counts.h2Sessions += 1;
              s.on('error', () => {});
              // RFC 9113 §6.8: no new stream after a GOAWAY (Node's client leaves that to its user).
              // A later GOAWAY never names a higher id than an earlier one.
              s.on('goaway', (_code, last) => {
                goneAway.add(s);
                lastProcessed.set(s, last);
              });
              s.once('close', () => sessions.delete(s));
            }
          } catch (err) {
            fail(`h2 connect ${(err as Error).message}`);
            continue;
          }
        }
        counts.requests += 1;
        const id = `h2-${(sequence += 1)}`;
        try {
          const r = await h2Request(session, '/', { headers: { 'x-request-id': id } });
          const last = lastProcessed.get(session);
          if (r.status === 200) {
            counts.ok += 1;
            counts.h2Ok += 1;
          } else if (r.status === 0 && last !== undefined && (r.streamId ?? 0) > last) {
            counts.requests -= 1;
            counts.h2Unsent.push(id);
          } else fail(`h2 status ${r.status} ${r.status === 0 ? `${r.body}, GOAWAY last stream ${last ?? 'none'}` : ''}`);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? '';
          // The session had received a GOAWAY before this request: nothing was sent, try on a new session.
          if (code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION') counts.requests -= 1;
          else if (/NGHTTP2_REFUSED_STREAM/.test((err as Error).message)) {
            counts.requests -= 1;
            counts.h2Unsent.push(id);
          } else fail(`h2 ${code} ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: options.h2Concurrency ?? 4 }, worker));
  };
  const all: Promise<void>[] = [];
  for (let i = 0; i < options.keepAlive; i++) {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, servername: 'a.test' });
    agents.push(agent);
    all.push(httpsClient(agent));
  }
  for (let i = 0; i < options.newConnection; i++) all.push(httpsClient(false));
  for (let i = 0; i < options.h2; i++) all.push(h2Client());
  return {
    counts,
    /** Resolves once `n` more requests have been answered. */
    async progress(n: number): Promise<void> {
      const target = counts.ok + n;
      const until = Date.now() + 30_000;
      while (counts.ok < target && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    },
    async stop(): Promise<TlsLoadCounts> {
      stopped = true;
      await Promise.all(all);
      for (const a of agents) a.destroy();
      for (const s of sessions) s.close();
      return counts;
    },
  };
}
