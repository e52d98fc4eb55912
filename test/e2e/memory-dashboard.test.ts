import fs from 'node:fs';
import net from 'node:net';
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

const TITLE = 'loads in headless Chromium, draws one line per generation with markers, and updates';

describe('memory dashboard', () => {
  it.skipIf(noChromium)(noChromium ? `${TITLE} — skipped: ${CHROMIUM} is absent (apt-get install chromium)` : TITLE, async () => {
    const { chromium } = await import('playwright-core');
    const baton = new BatonProcess(httpConfig(fixture('memory-app.ts'), { memory: { interval: '200ms', window: '5s' } }));
    await baton.active(1);
    expect((await baton.reload()).body.ok).toBe(true);
    await baton.active(2);
    const port = await forward(baton.socketPath);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`http://127.0.0.1:${port}/dashboard?every=300`);
      await page.waitForFunction(() => document.querySelectorAll('polyline.gen-line').length === 2, undefined, { timeout: 20_000 });
      const generations = await page.$$eval('polyline.gen-line', (ls) => ls.map((l) => l.getAttribute('data-generation')));
      expect(generations.sort()).toEqual(['1', '2']);
      expect(await page.$$eval('#timeline rect.gen-span', (rs) => rs.length)).toBe(2);
      expect(await page.$$eval('text.marker[data-kind="reload"]', (ms) => ms.length)).toBeGreaterThanOrEqual(1);
      const before = await page.$eval('polyline.gen-line[data-generation="2"]', (l) => l.getAttribute('points'));
      const updates = Number(await page.$eval('body', (b) => b.dataset.updates));
      await page.waitForFunction(
        ([prev, n]) =>
          Number(document.body.dataset.updates) > (n as number) &&
          document.querySelector('polyline.gen-line[data-generation="2"]')?.getAttribute('points') !== prev,
        [before, updates] as const,
        { timeout: 20_000 },
      );
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
