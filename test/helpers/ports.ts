import http from 'node:http';
import net from 'node:net';

/** Ports this process handed out: the kernel may offer a closed one again, and two listeners of one config must differ. */
const issued = new Set<number>();

/** A loopback port that was free a moment ago (for programs that must be told a fixed port), never one handed out before in this process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await anyFreePort();
    if (issued.has(port)) continue;
    issued.add(port);
    return port;
  }
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One GET on loopback; resolves with status and body. */
export function get(target: { port?: number; socketPath?: string }, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { ...(target.socketPath ? { socketPath: target.socketPath } : { host: '127.0.0.1', port: target.port }), path, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
