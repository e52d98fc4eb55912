// The plain Node upstream behind HAProxy: http-app.ts's `/` without the SDK. Prints its port.
import http from 'node:http';

const server = http.createServer((_req, res) => res.end(`upstream pid ${process.pid}\n`));
// Longer than HAProxy's timeouts, so the upstream never closes an idle pooled connection under it.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
