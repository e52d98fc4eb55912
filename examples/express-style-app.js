// An unmodified app: it calls listen(3000) like any Express app. Run it under Baton with the preload:
//   npm run baton -- run --listen 127.0.0.1:3000 -- node --import ./child/register.ts examples/express-style-app.js
// (installed from npm: npx baton run --listen 127.0.0.1:3000 -- node --import baton-supervisor/child/register app.js)
import http from 'node:http';

function app(req, res) {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, pid: process.pid }) + '\n');
}

http.createServer(app).listen(3000, () => console.log('listening on 3000'));
