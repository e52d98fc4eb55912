// examples/http-app.ts without the SDK, for bench:sdk: the same server and answer, its socket
// taken the systemd way (fd 3), drained on SIGTERM the way examples/plain-server.js does it.
import http from 'node:http';
import net from 'node:net';

const number = Number(process.env.BATON_GENERATION ?? 0);
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from generation ${number} (pid ${process.pid})\n`);
});

server.listen({ fd: 3 });
let draining = false;
server.prependListener('request', (_req, res) => {
  if (draining) res.setHeader('connection', 'close');
});
process.once('SIGTERM', () => {
  draining = true;
  net.Server.prototype.close.call(server, () => process.exit(0));
});
