// A program that knows nothing of Baton: socket activation the systemd way, as any language does it.
// Baton passes the listening socket as fd 3 (LISTEN_FDS=1, LISTEN_PID = this pid), sees the program
// is ready once it accepts on it, and drains it with SIGTERM. Run it with:
//   npm run baton -- run --listen 127.0.0.1:8081 -- node examples/plain-server.js
import http from 'node:http';
import net from 'node:net';

if (process.env.LISTEN_PID !== String(process.pid) || process.env.LISTEN_FDS !== '1') {
  console.error('expected one socket-activated listener (LISTEN_FDS=1, LISTEN_PID=<my pid>)');
  process.exit(1);
}

const server = http.createServer((req, res) => res.end(`hello from pid ${process.pid}\n`));
server.listen({ fd: 3 });
// Drain without racing clients: stop accepting but keep open connections (http.Server#close()
// would also drop idle ones, including just-accepted connections whose request is on its way),
// and answer with Connection: close until the last one has gone.
let draining = false;
server.prependListener('request', (req, res) => {
  if (draining) res.setHeader('connection', 'close');
});
process.once('SIGTERM', () => {
  draining = true;
  net.Server.prototype.close.call(server, () => process.exit(0));
});
