// A program that knows nothing of Baton: socket activation the systemd way, as any language does it.
// Baton passes the listening socket as fd 3 (LISTEN_FDS=1, LISTEN_PID = this pid), sees the program
// is ready once it accepts on it, and drains it with SIGTERM. Run it with:
//   node bin/baton run --listen 127.0.0.1:8081 -- node examples/plain-server.js
import http from 'node:http';

if (process.env.LISTEN_PID !== String(process.pid) || process.env.LISTEN_FDS !== '1') {
  console.error('expected one socket-activated listener (LISTEN_FDS=1, LISTEN_PID=<my pid>)');
  process.exit(1);
}

const server = http.createServer((req, res) => res.end(`hello from pid ${process.pid}\n`));
server.listen({ fd: 3 });
process.once('SIGTERM', () => server.close(() => process.exit(0)));
