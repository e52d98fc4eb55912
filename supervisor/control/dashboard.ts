/**
 * The control socket's `/dashboard`: one self-contained page (no dependencies, no external
 * requests) that polls `/memory/series` and plots each generation's RSS over time as one line,
 * with reload / crash / limit markers, and the generation timeline underneath.
 * Reach it through the socket, e.g. `socat TCP-LISTEN:8081,bind=127.0.0.1,fork UNIX:/path/NAME.sock`.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Baton memory</title>
<style>
body{font:13px system-ui,sans-serif;margin:16px;color:#222}
svg{background:#fafafa;border:1px solid #ddd}
.legend span{margin-right:12px}
.axis{stroke:#999;stroke-width:1}
text{font-size:11px;fill:#555}
</style></head>
<body>
<h1>Baton — memory per generation</h1>
<p>RSS (MiB) over time, one line per generation; markers: ▲ reload/start, ✕ crash, ● limit/growing. <span id="status">loading…</span></p>
<svg id="chart" width="900" height="320" viewBox="0 0 900 320"></svg>
<div class="legend" id="legend"></div>
<h2>Generation timeline</h2>
<svg id="timeline" width="900" height="120" viewBox="0 0 900 120"></svg>
<script>
const COLORS = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
const NS = 'http://www.w3.org/2000/svg';
const every = Number(new URLSearchParams(location.search).get('every')) || 2000;
let updates = 0;
function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent.appendChild(e);
  return e;
}
function draw(gens) {
  const chart = document.getElementById('chart');
  const timeline = document.getElementById('timeline');
  chart.replaceChildren(); timeline.replaceChildren();
  const W = 900, H = 320, L = 50, R = 10, T = 10, B = 30;
  const pts = gens.flatMap((g) => g.points.filter((p) => typeof p.rss === 'number'));
  if (pts.length === 0) return;
  const t0 = Math.min(...pts.map((p) => p.t)), t1 = Math.max(...pts.map((p) => p.t), t0 + 1);
  const ymax = Math.max(...pts.map((p) => p.rss)) / 1048576 * 1.1 || 1;
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = (v) => H - B - v / ymax * (H - T - B);
  el('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }, chart);
  el('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }, chart);
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    el('text', { x: 4, y: y(v) + 4 }, chart).textContent = v.toFixed(0);
  }
  el('text', { x: L, y: H - 8 }, chart).textContent = new Date(t0).toLocaleTimeString();
  el('text', { x: W - R - 60, y: H - 8 }, chart).textContent = new Date(t1).toLocaleTimeString();
  const legend = document.getElementById('legend');
  legend.replaceChildren();
  gens.forEach((g, i) => {
    const color = COLORS[g.generation % COLORS.length];
    const line = g.points.filter((p) => typeof p.rss === 'number').map((p) => x(p.t).toFixed(1) + ',' + y(p.rss / 1048576).toFixed(1)).join(' ');
    el('polyline', { class: 'gen-line', 'data-generation': g.generation, points: line, fill: 'none', stroke: color, 'stroke-width': 2 }, chart);
    for (const e of g.events) {
      if (e.t < t0) continue;
      const near = g.points.reduce((a, p) => (Math.abs(p.t - e.t) < Math.abs(a.t - e.t) ? p : a), g.points[0] || { t: e.t, rss: 0 });
      const cx = x(e.t), cy = y((near.rss || 0) / 1048576);
      const symbol = e.kind === 'crash' ? '✕' : e.kind === 'reload' || e.kind === 'start' || e.kind === 'restart' ? '▲' : '●';
      const m = el('text', { class: 'marker', 'data-kind': e.kind, x: cx - 4, y: cy - 4, fill: color }, chart);
      m.textContent = symbol;
      el('title', {}, m).textContent = 'generation ' + g.generation + ': ' + e.kind + (e.detail ? ' (' + e.detail + ')' : '');
    }
    const s = document.createElement('span');
    s.style.color = color;
    s.textContent = 'gen ' + g.generation + (g.exitedAt ? ' (exited)' : '');
    legend.appendChild(s);
    const first = g.points[0] ? g.points[0].t : t0, last = g.exitedAt || (g.points.at(-1) || { t: t1 }).t;
    const row = 10 + (i % 8) * 13;
    el('rect', { class: 'gen-span', 'data-generation': g.generation, x: x(Math.max(first, t0)), y: row, width: Math.max(2, x(last) - x(Math.max(first, t0))), height: 10, fill: color }, timeline);
    el('text', { x: 4, y: row + 9 }, timeline).textContent = 'gen ' + g.generation;
  });
}
async function refresh() {
  try {
    const r = await fetch('memory/series');
    const body = await r.json();
    draw(body.generations);
    updates++;
    document.body.dataset.updates = String(updates);
    document.getElementById('status').textContent = 'updated ' + new Date().toLocaleTimeString() + ' (' + updates + ')';
  } catch (err) {
    document.getElementById('status').textContent = 'error: ' + err;
  }
  setTimeout(refresh, every);
}
refresh();
</script>
</body></html>
`;
