/**
 * Readiness `http:/PATH`: one GET through the held listener, true for a 2xx answer within a
 * second (the listener accepting is checked first, by the caller).
 */
import type { Address } from '../../shared/address.ts';
import { nodeHttp } from '../../shared/node-http.ts';

export function httpProbe(address: Address, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const target = address.kind === 'unix' ? { socketPath: address.path } : { host: address.host, port: address.port };
    const req = nodeHttp.get({ ...target, path, agent: false, timeout: 1000, headers: { 'user-agent': 'baton-readiness' } }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}
