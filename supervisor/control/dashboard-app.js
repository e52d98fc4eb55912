/* The memory dashboard's script (served as /dashboard/app.js, plain browser JavaScript, uPlot global). */
'use strict';
const MiB = 1048576;
const COLORS = ['#1f77b4', '#2ca02c', '#17becf', '#e377c2', '#bcbd22', '#7f7f7f', '#8c564b', '#ff9896'];
/** Marker kinds: glyph and color; the legend is built from this table. */
const MARKERS = {
  start: { glyph: '▲', color: '#1f77b4', label: 'start / reload' },
  reload: { glyph: '▲', color: '#1f77b4', label: 'start / reload' },
  restart: { glyph: '▲', color: '#1f77b4', label: 'start / reload' },
  crash: { glyph: '✕', color: '#d62728', label: 'crash' },
  'soft-limit': { glyph: '◆', color: '#ff7f0e', label: 'soft limit (release)' },
  'hard-limit': { glyph: '■', color: '#9467bd', label: 'hard-limit replacement' },
  growing: { glyph: '●', color: '#8c564b', label: 'leak flag' },
  replaced: { glyph: '▽', color: '#999999', label: 'replaced / exit' },
  exit: { glyph: '▽', color: '#999999', label: 'replaced / exit' },
};
const SOFT = '#ff7f0e';
const HARD = '#d62728';
const every = Number(new URLSearchParams(location.search).get('every')) || 2000;
const state = { updates: 0, charts: new Map(), overview: null };
/** What the page shows, for tests and curious users: window.baton. */
window.baton = state;

function legend() {
  const seen = new Set();
  const el = document.getElementById('markers');
  el.replaceChildren();
  for (const [kind, m] of Object.entries(MARKERS)) {
    if (seen.has(m.label)) continue;
    seen.add(m.label);
    const s = document.createElement('span');
    s.className = 'marker-legend';
    s.dataset.kind = kind;
    s.style.color = m.color;
    s.textContent = `${m.glyph} ${m.label}`;
    el.appendChild(s);
  }
  for (const [label, color] of [['soft limit', SOFT], ['hard limit', HARD]]) {
    const s = document.createElement('span');
    s.className = 'limit-legend';
    s.style.color = color;
    s.textContent = `┄ ${label}`;
    el.appendChild(s);
  }
}

/** A uPlot plugin drawing event markers: a thin vertical line and the kind's glyph at the top. */
function markerPlugin(events) {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const [x0, x1] = [u.scales.x.min, u.scales.x.max];
        ctx.save();
        ctx.font = `${Math.round(12 * devicePixelRatio)}px sans-serif`;
        ctx.textAlign = 'center';
        for (const e of events()) {
          const t = e.t / 1000;
          if (t < x0 || t > x1) continue;
          const m = MARKERS[e.kind] || { glyph: '•', color: '#444' };
          const x = u.valToPos(t, 'x', true);
          ctx.strokeStyle = m.color;
          ctx.lineWidth = devicePixelRatio;
          ctx.setLineDash([2 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillStyle = m.color;
          ctx.fillText(m.glyph, x, u.bbox.top + 12 * devicePixelRatio);
        }
        ctx.restore();
      },
    },
  };
}

function width() {
  return Math.max(320, document.body.clientWidth - 8);
}

function limitSeries(limit) {
  return limit && typeof limit.rss === 'number' ? limit.rss / MiB : null;
}

/** Column arrays for uPlot: x in seconds, then one array per figure. */
function columns(points, picks) {
  const xs = points.map((p) => p.t / 1000);
  return [xs, ...picks.map((f) => points.map((p) => { const v = f(p); return typeof v === 'number' && v >= 0 ? v : null; }))];
}

function mib(key) {
  return (p) => (typeof p[key] === 'number' && p[key] >= 0 ? p[key] / MiB : null);
}

function breakdown(g) {
  const je = g.points.some((p) => typeof p.jemallocAllocated === 'number' && p.jemallocAllocated >= 0);
  const rows = [
    ['RSS', '#000000', mib('rss')],
    ['V8 used', '#1f77b4', mib('v8Used')],
    ['V8 committed', '#aec7e8', mib('v8Committed')],
    ['external', '#2ca02c', mib('external')],
  ];
  if (je) rows.push(['jemalloc allocated', '#9467bd', mib('jemallocAllocated')], ['jemalloc resident', '#c5b0d5', mib('jemallocResident')], ['jemalloc retained', '#c49c94', mib('jemallocRetained')]);
  else rows.push(['malloc in use', '#9467bd', mib('mallocInUse')], ['malloc free', '#c5b0d5', mib('mallocFreeResident')], ['malloc returned', '#c49c94', mib('mallocReturned')]);
  const soft = limitSeries(g.limits && g.limits.soft);
  const hard = limitSeries(g.limits && g.limits.hard);
  if (soft !== null) rows.push(['soft limit', SOFT, () => soft, true]);
  if (hard !== null) rows.push(['hard limit', HARD, () => hard, true]);
  return rows;
}

function chart(target, title, rows, data, events, yLabel) {
  const opts = {
    title,
    width: width(),
    height: 220,
    cursor: { sync: { key: 'baton' } },
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 60 }],
    series: [{}, ...rows.map(([label, stroke, , dashed]) => ({ label, stroke, width: 1.5, dash: dashed ? [6, 4] : undefined, value: (u, v) => (v === null || v === undefined ? '–' : v.toFixed(1)) }))],
    plugins: [markerPlugin(events)],
  };
  return new uPlot(opts, data, target);
}

function inWindow(points) {
  const span = Number(document.getElementById('window').value);
  if (!span || points.length === 0) return points;
  const newest = Math.max(...points.map((p) => p.t));
  return points.filter((p) => p.t >= newest - span);
}

function draw(gens) {
  const all = gens.flatMap((g) => inWindow(g.points).map((p) => ({ ...p, g: g.generation })));
  // Overview: one RSS line per generation on a shared time axis, plus the limit lines.
  const times = [...new Set(all.map((p) => p.t))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const rows = gens.map((g, i) => [`gen ${g.generation}`, COLORS[g.generation % COLORS.length], null]);
  const data = [times.map((t) => t / 1000), ...gens.map((g) => {
    const col = new Array(times.length).fill(null);
    for (const p of inWindow(g.points)) if (typeof p.rss === 'number') col[index.get(p.t)] = p.rss / MiB;
    return col;
  })];
  const limits = gens[0] && gens[0].limits;
  for (const [label, color, limit] of [['soft limit', SOFT, limits && limits.soft], ['hard limit', HARD, limits && limits.hard]]) {
    const v = limitSeries(limit);
    if (v !== null) {
      rows.push([label, color, null, true]);
      data.push(times.map(() => v));
    }
  }
  const events = () => gens.flatMap((g) => g.events);
  const key = gens.map((g) => g.generation).join(',') + '|' + rows.length;
  const overview = document.getElementById('overview');
  if (state.overview && state.overview.key === key) state.overview.plot.setData(data);
  else {
    if (state.overview) state.overview.plot.destroy();
    state.overview = { key, plot: chart(overview, 'RSS (MiB)', rows, data, events, 'MiB'), generations: gens.map((g) => g.generation), limits: rows.filter((r) => r[3]).map((r) => r[0]) };
  }
  // Per generation: the breakdown and the event-loop delay.
  const container = document.getElementById('generations');
  const live = new Set(gens.map((g) => g.generation));
  for (const [n, c] of state.charts) if (!live.has(n)) { c.mem.destroy(); c.loop.destroy(); c.el.remove(); state.charts.delete(n); }
  for (const g of gens) {
    const pts = inWindow(g.points);
    const rowsG = breakdown(g);
    const memData = columns(pts, rowsG.map((r) => r[2]));
    const loopRows = [['loop delay p50', '#1f77b4', (p) => p.loopDelayP50], ['loop delay p99', '#d62728', (p) => p.loopDelayP99]];
    const loopData = columns(pts, loopRows.map((r) => r[2]));
    let c = state.charts.get(g.generation);
    const memKey = rowsG.map((r) => r[0]).join(',');
    if (c && c.memKey !== memKey) { c.mem.destroy(); c.loop.destroy(); c.el.remove(); state.charts.delete(g.generation); c = undefined; }
    if (!c) {
      const el = document.createElement('section');
      el.className = 'generation';
      el.dataset.generation = String(g.generation);
      el.innerHTML = `<h2>generation ${g.generation} (pid ${g.pid})${g.exitedAt ? ' — exited' : ''}</h2><div class="mem chart"></div><div class="loop chart"></div>`;
      container.appendChild(el);
      const mine = () => g.events;
      c = { el, memKey, series: rowsG.map((r) => r[0]), mem: chart(el.querySelector('.mem'), 'memory (MiB)', rowsG, memData, mine, 'MiB'), loop: chart(el.querySelector('.loop'), 'event-loop delay (ms)', loopRows, loopData, mine, 'ms') };
      state.charts.set(g.generation, c);
    } else {
      c.mem.setData(memData);
      c.loop.setData(loopData);
    }
  }
}

async function refresh() {
  try {
    const r = await fetch('memory/series');
    const body = await r.json();
    state.generations = body.generations;
    draw(body.generations);
    state.updates++;
    document.body.dataset.updates = String(state.updates);
    document.getElementById('status').textContent = `updated ${new Date().toLocaleTimeString()} (${state.updates})`;
  } catch (err) {
    document.getElementById('status').textContent = `error: ${err}`;
  }
  setTimeout(refresh, every);
}

window.addEventListener('resize', () => {
  for (const c of state.charts.values()) { c.mem.setSize({ width: width(), height: 220 }); c.loop.setSize({ width: width(), height: 220 }); }
  if (state.overview) state.overview.plot.setSize({ width: width(), height: 220 });
});
document.getElementById('window').addEventListener('change', () => state.generations && draw(state.generations));
legend();
refresh();
