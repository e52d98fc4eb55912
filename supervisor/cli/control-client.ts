import { BatonError } from '../../shared/errors.ts';
import { checkControlSocketPath } from '../os/paths.ts';

// `import http from 'node:http'` would cost a client command ~40 ms of CPU: an ES module import of
// a built-in reads every export, and node:http's lazy ones load undici, http2 and tls (Node 22-26).
// getBuiltinModule hands over the CommonJS exports without touching them (~4 ms).
const http = process.getBuiltinModule('node:http');
const net = process.getBuiltinModule('node:net');

export interface ControlResponse {
  status: number;
  body: unknown;
}

/**
 * One request to an instance's control socket; ERR_CONTROL_UNREACHABLE when nobody accepts it,
 * ERR_TIMEOUT when a supervisor accepts but does not answer within `timeoutMs` (a wedged one).
 */
export function controlRequest(socketPath: string, method: string, path: string, timeoutMs = 10_000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    // A socket another user could have put there would answer for an instance that is not ours.
    checkControlSocketPath(socketPath);
    // A fresh connection each time: a pooled one could outlive the supervisor it reached (an upgrade).
    // Our own connection and no agent at all: an agent's bookkeeping (its server-name check compiles
    // Node's IPv6 pattern) is ~7 ms of a client command's start for a socket it would not reuse.
    const connect = (): ReturnType<typeof net.connect> => net.connect(socketPath);
    const req = http.request({ createConnection: connect, method, path, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch (err) {
          reject(new BatonError('ERR_CONTROL', `unexpected reply from ${socketPath}: ${text.slice(0, 200)}`, { cause: err }));
        }
      });
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy(new BatonError('ERR_TIMEOUT', `the Baton instance at ${socketPath} did not answer ${method} ${path} within ${timeoutMs / 1000} s`));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof BatonError) return reject(err);
      reject(
        new BatonError('ERR_CONTROL_UNREACHABLE', `no Baton instance answers at ${socketPath} (${err.code ?? err.message}): is it running?`, {
          cause: err,
        }),
      );
    });
    req.end();
  });
}
