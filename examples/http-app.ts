// The default app of `npm start`: an HTTP server on the socket Baton holds for it.
import http from 'node:http';
import { generation, listen, ready } from '../child/index.ts';

const { generation: number } = generation();
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from generation ${number} (pid ${process.pid})\n`);
});

await listen({ name: 'http', address: '127.0.0.1:8080' }, server);
ready();
