// Help text an app registers with the SDK (`stats.counter(name, { help })`) is stored with the
// stat in the shared segment, so every surface that reads the segment prints it: the
// supervisor's control socket, the TCP metrics listener and `baton stats --prometheus` — across a
// reload, and for stats whose generation is gone.
import { execFile, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { freePort, get } from '../helpers/ports.ts';

afterEach(cleanupAll);

const PROMTOOL = '/usr/bin/promtool';
const hasPromtool = spawnSync(PROMTOOL, ['--version']).status === 0;

function promtool(text: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(PROMTOOL, ['check', 'metrics'], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
    child.stdin!.end(text);
  });
}

const EXPECTED_HELP = [
  '# HELP app_requests_total Requests served',
  // The exposition escapes a backslash in HELP as \\ (quotes stay as they are).
  '# HELP app_route_hits_total Hits by route, with a backslash \\\\ and "quotes".',
  '# HELP app_hit_seconds Time to answer a hit.',
  '# HELP app_up This generation is up.',
];

function expectHelp(text: string, where: string): void {
  const lines = text.split('\n');
  for (const help of EXPECTED_HELP) expect(lines, `${where}: ${help}`).toContain(help);
  expect(text, where).not.toMatch(/^# HELP app_\S+ .*no help text registered/m);
}

describe("the SDK's help text on the supervisor's /metrics", () => {
  it('reaches the control socket, the TCP listener and baton stats, after a reload too', async () => {
    const metricsPort = await freePort();
    const baton = new BatonProcess(httpConfig(fixture('help-app.ts'), { listeners: [{ name: 'http', address: `127.0.0.1:${await freePort()}` }], metrics: { listen: `127.0.0.1:${metricsPort}` } }));
    await baton.active(1);
    const app = { port: await baton.port() };
    for (let i = 0; i < 3; i++) expect((await get(app, '/a')).status).toBe(200);
    expect((await baton.reload()).body.ok).toBe(true);
    await baton.active(2);
    for (let i = 0; i < 2; i++) expect((await get(app, '/b')).status).toBe(200);

    const cli = await baton.cli('stats', '--name', 'test', '--prometheus');
    expect(cli.exitCode, String(cli.stderr)).toBe(0);
    const surfaces = {
      control: (await get({ socketPath: baton.socketPath }, '/metrics')).body,
      listener: (await get({ port: metricsPort }, '/metrics')).body,
      cli: `${String(cli.stdout)}\n`, // execa strips the final newline
    };
    for (const [where, text] of Object.entries(surfaces)) {
      expectHelp(text, where);
      expect(text, where).toMatch(/^app_requests_total 5$/m);
      expect(text, where).toMatch(/^app_route_hits_total\{route="\/a"\} 3$/m);
      if (hasPromtool) {
        const result = await promtool(text);
        expect(result, `${where}:\n${result.out}`).toEqual({ code: 0, out: '' });
      }
    }
  });
});
