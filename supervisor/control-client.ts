import http from 'node:http';
import { BatonError } from '../shared/errors.ts';

export interface ControlResponse {
  status: number;
  body: unknown;
}

/** One request to an instance's control socket; ERR_CONTROL_UNREACHABLE when nobody answers. */
export function controlRequest(socketPath: string, method: string, path: string): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, headers: { accept: 'application/json' } }, (res) => {
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
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new BatonError('ERR_CONTROL_UNREACHABLE', `no Baton instance answers at ${socketPath} (${err.code ?? err.message}): is it running?`, {
          cause: err,
        }),
      );
    });
    req.end();
  });
}
