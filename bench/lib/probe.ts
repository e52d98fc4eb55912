// The outside view of a reload: a client that opens a new connection per request, back to back,
// and reads which process answered (Baton: the pid in http-app's body; HAProxy: the worker pid
// HAProxy writes into a response header). The new process "accepts" once it answers a probe.
import http from 'node:http';

export type Identify = (res: http.IncomingMessage, body: string) => string | undefined;

export const byBodyPid: Identify = (_res, body) => /\bpid (\d+)/.exec(body)?.[1];
/** The generation (or release) a body names: with several workers, any of them is the new one. */
export const byBodyGeneration: Identify = (_res, body) => /\b(?:generation|release) (\d+)/.exec(body)?.[1];
export const byHeader =
  (name: string): Identify =>
  (res) => {
    const v = res.headers[name];
    return typeof v === 'string' ? v : undefined;
  };

export interface ProbeAnswer {
  identity?: string;
  error?: string;
}

/** One GET / on a new connection; never rejects. */
export function probeOnce(port: number, identify: Identify, timeoutMs = 2_000): Promise<ProbeAnswer> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve({ error: `status ${res.statusCode}` });
        resolve({ identity: identify(res, Buffer.concat(chunks).toString('utf8')) });
      });
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      resolve({ error: 'timeout' });
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

export interface NewIdentity {
  identity: string;
  /** From `t0` to the end of the first response from a process other than `old`. */
  ms: number;
  attempts: number;
  errors: string[];
}

/**
 * Probes back to back (or one every `intervalMs`, to keep the probe's own CPU out of what it
 * measures) until a process other than `old` answers; rejects after `timeoutMs`.
 */
export async function waitForNewIdentity(port: number, identify: Identify, old: string, t0: number, timeoutMs: number, intervalMs = 0): Promise<NewIdentity> {
  const errors: string[] = [];
  let attempts = 0;
  while (performance.now() - t0 < timeoutMs) {
    attempts += 1;
    const sent = performance.now();
    const a = await probeOnce(port, identify);
    if (a.error !== undefined) errors.push(a.error);
    else if (a.identity !== undefined && a.identity !== old) return { identity: a.identity, ms: performance.now() - t0, attempts, errors };
    const wait = intervalMs - (performance.now() - sent);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  throw new Error(`no process other than ${old} answered within ${timeoutMs} ms (${attempts} probes; errors: ${errors.slice(0, 5).join(', ') || 'none'})`);
}

/** The identity serving now (a few tries, for a start-up that is still settling). */
export async function currentIdentity(port: number, identify: Identify): Promise<string> {
  let last: ProbeAnswer = {};
  for (let i = 0; i < 50; i++) {
    last = await probeOnce(port, identify);
    if (last.identity !== undefined) return last.identity;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} does not answer with an identity (${last.error ?? 'no identity in the response'})`);
}
