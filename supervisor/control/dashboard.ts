/**
 * The memory dashboard as a route handler any server can mount (the control socket today, a TCP
 * metrics listener when one is configured): `/dashboard` is the page, `/dashboard/*` its static
 * assets — uPlot from node_modules (no CDN, no external request) and the page's own script. The
 * page polls `memory/series` relative to itself, so it works under whatever prefix mounts it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A static answer: status, body text, content type. */
export interface DashboardReply {
  status: number;
  body: string;
  contentType: string;
}

// By way of ../control/: the same file from this module and from the bundled command line (dist/supervisor/bundle/).
const appFile = fileURLToPath(new URL('../control/dashboard-app.js', import.meta.url));
const require = createRequire(import.meta.url);

/** Assets under /dashboard/: file path and content type, read once on first use. */
const ASSETS: Record<string, { file: () => string; type: string }> = {
  'uplot.js': { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uplot.css': { file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
  'app.js': { file: () => appFile, type: 'text/javascript; charset=utf-8' },
};
const cache = new Map<string, string>();

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Baton memory</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="dashboard/uplot.css">
<style>
body{font:13px system-ui,sans-serif;margin:16px;color:#222}
h2{font-size:14px;margin:18px 0 4px}
#markers span{margin-right:14px;white-space:nowrap}
.chart{margin-bottom:8px}
</style></head>
<body>
<h1>Baton — memory per generation</h1>
<p>window <select id="window"><option value="60000">1 min</option><option value="300000">5 min</option><option value="900000" selected>15 min</option>
<option value="3600000">1 h</option><option value="0">all</option></select> <span id="status">loading…</span></p>
<div id="markers"></div>
<h2>RSS, every generation</h2><div id="overview" class="chart"></div>
<div id="generations"></div>
<script src="dashboard/uplot.js"></script>
<script src="dashboard/app.js"></script>
</body></html>
`;

/** The dashboard's answer for `route` (`/dashboard` or `/dashboard/<asset>`), or undefined when it is not the dashboard's. */
export function dashboardRoute(route: string): DashboardReply | undefined {
  if (route === '/dashboard') return { status: 200, body: DASHBOARD_HTML, contentType: 'text/html; charset=utf-8' };
  if (!route.startsWith('/dashboard/')) return undefined;
  const asset = ASSETS[route.slice('/dashboard/'.length)];
  if (!asset) return undefined;
  const name = route.slice('/dashboard/'.length);
  let body = cache.get(name);
  if (body === undefined) {
    body = fs.readFileSync(asset.file(), 'utf8');
    cache.set(name, body);
  }
  return { status: 200, body, contentType: asset.type };
}
