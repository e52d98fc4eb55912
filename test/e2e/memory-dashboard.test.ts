import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';

const CHROMIUM = '/usr/bin/chromium';
const noChromium = !fs.existsSync(CHROMIUM);

const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) s.close();
  await cleanupAll();
});

/** A loopback TCP port forwarding to the control socket: a browser cannot open a Unix socket. */
async function forward(socketPath: string): Promise<number> {
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

const TITLE = 'draws per generation RSS lines, breakdowns, limit lines and a marker legend with uPlot in headless Chromium, and updates';

/** The page's own state (window.baton in dashboard-app.js). */
interface PageState {
  updates: number;
  overview: { generations: number[]; limits: string[] } | null;
  charts: Map<number, { series: string[] }>;
}

describe('memory dashboard', () => {
  it.skipIf(noChromium)(noChromium ? `${TITLE} — skipped: ${CHROMIUM} is absent (apt-get install chromium)` : TITLE, async () => {
    const { chromium } = await import('playwright-core');
    const baton = new BatonProcess(httpConfig(fixture('memory-app.ts'), { memory: { interval: '200ms', window: '5s', 'soft-limit': '300MiB', 'hard-limit': '500MiB' } }));
    await baton.active(1);
    expect((await baton.reload()).body.ok).toBe(true);
    await baton.active(2);
    const port = await forward(baton.socketPath);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 1600 } });
      const errors: string[] = [];
      const external: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('request', (r) => {
        if (!r.url().startsWith(`http://127.0.0.1:${port}/`)) external.push(r.url());
      });
      await page.goto(`http://127.0.0.1:${port}/dashboard?every=300`);
      await page.waitForFunction(() => {
        const s = (window as unknown as { baton: PageState }).baton;
        return s.overview?.generations.length === 2 && s.charts.size === 2;
      }, undefined, { timeout: 20_000 });
      const seen = await page.evaluate(() => {
        const s = (window as unknown as { baton: PageState }).baton;
        return { generations: s.overview!.generations, limits: s.overview!.limits, series: [...s.charts.values()].map((c) => c.series) };
      });
      expect(seen.generations).toEqual([1, 2]);
      expect(seen.limits).toEqual(['soft limit', 'hard limit']);
      for (const series of seen.series) {
        expect(series).toEqual(['RSS', 'V8 used', 'V8 committed', 'external', 'malloc in use', 'malloc free', 'malloc returned', 'soft limit', 'hard limit']);
      }
      const legend = await page.$$eval('#markers .marker-legend', (ms) => ms.map((m) => m.textContent));
      expect(legend).toEqual(['▲ start / reload', '✕ crash', '◆ soft limit (release)', '■ hard-limit replacement', '● leak flag', '▽ replaced / exit']);
      // uPlot's hover legend: one row per series with its value.
      expect(await page.$$eval('#overview .u-legend .u-series', (rows) => rows.length)).toBe(1 + 2 + 2);
      expect(await page.$$eval('section.generation', (s) => s.length)).toBe(2);

      // The screenshot: the overview shows each generation's line color and both limit colors.
      const shot = await page.locator('#overview').screenshot();
      fs.mkdirSync('test-results', { recursive: true });
      fs.writeFileSync(path.join('test-results', 'memory-dashboard.png'), await page.screenshot({ fullPage: true }));
      const counts = await page.evaluate(async (b64) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width;
        c.height = img.height;
        const ctx = c.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, c.width, c.height).data;
        const targets: Record<string, number[]> = { gen1: [0x2c, 0xa0, 0x2c], gen2: [0x17, 0xbe, 0xcf], soft: [0xff, 0x7f, 0x0e], hard: [0xd6, 0x27, 0x28] };
        const out: Record<string, number> = {};
        for (const [name, [r, g, bl]] of Object.entries(targets)) {
          let n = 0;
          for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - r!) + Math.abs(data[i + 1]! - g!) + Math.abs(data[i + 2]! - bl!) < 40) n++;
          out[name] = n;
        }
        return out;
      }, shot.toString('base64'));
      for (const [name, n] of Object.entries(counts)) expect(n, `${name} pixels in the overview`).toBeGreaterThan(20);

      const updates = Number(await page.$eval('body', (b) => b.dataset.updates));
      await page.waitForFunction((n) => Number(document.body.dataset.updates) > n + 1, updates, { timeout: 20_000 });
      // Any window size: a narrower viewport redraws the charts narrower.
      await page.setViewportSize({ width: 600, height: 1200 });
      await page.waitForFunction(() => (document.querySelector('#overview canvas') as HTMLCanvasElement).getBoundingClientRect().width < 600, undefined, { timeout: 5000 });
      expect(errors).toEqual([]);
      expect(external).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
