import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { cleanupAll } from '../helpers/baton.ts';
import { addresses, startProxyBaton, type ProxyFile } from '../proxy/harness.ts';
import { startUpstream, type Upstream } from '../proxy/upstreams.ts';

const upstreams: Upstream[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await cleanupAll();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

const CLIENTS = 200;
const DRAIN_MS = 4_000;
const SHARE = 0.5;

function open(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    sockets.push(ws);
    ws.once('open', () => resolve(ws)).once('error', reject);
  });
}

describe('paced close', () => {
  it(`${CLIENTS} WebSocket clients of a draining proxy are closed spread over the last ${SHARE * 100}% of the drain timeout, and all reconnect`, async () => {
    const a = await startUpstream('a');
    upstreams.push(a);
    const l = await addresses('web');
    const file: ProxyFile = {
      listeners: [{ name: 'web', address: l.web!.address }],
      app: { listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'main' }] } }, clusters: { main: { endpoints: [a.address] } } },
      'drain-timeout': `${DRAIN_MS}ms`,
      'paced-close': `${SHARE * 100}%`,
    };
    const baton = startProxyBaton(file);
    await baton.active(1);
    const port = l.web!.port;
    const clients: WebSocket[] = [];
    for (let i = 0; i < CLIENTS; i += 20) clients.push(...(await Promise.all(Array.from({ length: 20 }, () => open(port)))));
    let reloadedAt = 0;
    const closedAfter: number[] = [];
    const reconnected: Promise<WebSocket>[] = [];
    const allClosed = new Promise<void>((resolve) => {
      for (const ws of clients) {
        ws.once('close', () => {
          closedAfter.push(Date.now() - reloadedAt);
          reconnected.push(open(port));
          if (closedAfter.length === CLIENTS) resolve();
        });
      }
    });
    const r = await baton.reload();
    reloadedAt = Date.now();
    expect(r.body).toMatchObject({ ok: true, generation: 2 });
    await allClosed;
    const fresh = await Promise.all(reconnected);
    expect(fresh.every((ws) => ws.readyState === WebSocket.OPEN)).toBe(true);
    const sorted = [...closedAfter].sort((x, y) => x - y);
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    // The span ends 300 ms before the deadline (child/drain/paced-close.ts), so it starts that much earlier too.
    const spanStart = DRAIN_MS * (1 - SHARE) - 300;
    const bin = 250;
    const bins = new Map<number, number>();
    for (const t of sorted) bins.set(Math.floor(t / bin), (bins.get(Math.floor(t / bin)) ?? 0) + 1);
    const histogram = [...bins.entries()]
      .sort((x, y) => x[0] - y[0])
      .map(([b, n]) => `${String(b * bin).padStart(5)}–${String((b + 1) * bin).padEnd(5)} ms ${String(n).padStart(3)} ${'#'.repeat(n)}`)
      .join('\n');
    console.log(`closes after the reload answered (drain ${DRAIN_MS} ms, paced over the last ${SHARE * 100}%):\n${histogram}\np5 ${at(0.05)} ms, p50 ${at(0.5)} ms, p95 ${at(0.95)} ms`);
    // Every stream was closed before the drain deadline: the SIGTERM there (if the proxy has not
    // exited by then) finds no connection to cut.
    const exit = await baton.workerState(1, 'exited');
    expect(exit).toMatchObject({ from: 'draining', code: 0 });
    const timeout = baton.events.find((e) => e.type === 'drain-timeout' && e.generation === 1);
    if (timeout?.type === 'drain-timeout') expect(timeout.connections, JSON.stringify(timeout)).toBe(0);

    // None before the paced span (the reload's answer comes a little after the drain began: 300 ms of slack).
    expect(sorted[0]!).toBeGreaterThan(spanStart - 300);
    expect(sorted[sorted.length - 1]!).toBeLessThan(DRAIN_MS - 200);
    // Spread, not a burst: the middle 90% take most of the span, and no quarter second holds a quarter of the clients.
    expect(at(0.95) - at(0.05)).toBeGreaterThan(0.6 * SHARE * DRAIN_MS);
    expect(Math.max(...bins.values())).toBeLessThan(CLIENTS / 4);
  });
});
