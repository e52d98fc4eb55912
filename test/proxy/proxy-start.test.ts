/**
 * What a proxy generation loads before it serves (issue #19): without TLS in its configuration,
 * none of the TLS modules (nor node:https); from the second generation on, on the file the first
 * one checked, neither yaml nor valibot (proxy/config/config-cache.ts). Each still serves; an edited file
 * is checked in full again, and a bad edit fails the reload while the serving generation serves.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, NODE_FLAGS, ROOT } from '../helpers/baton.ts';
import { addresses, fileFor, request, type ProxyFile } from './harness.ts';
import { startUpstream, type Upstream } from './upstreams.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-proxy-start-'));
const upstreams: Upstream[] = [];
afterEach(async () => {
  await cleanupAll();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const RECORD = path.join(ROOT, 'test/fixtures/record-modules.mjs');

/** What process `pid` loaded (written when it exited): its files relative to the checkout, and the built-ins. */
async function loadedBy(dir: string, pid: number): Promise<{ ours: string[]; builtins: string[] }> {
  const file = path.join(dir, `${pid}.json`);
  await expect.poll(() => fs.existsSync(file), { timeout: 20_000 }).toBe(true);
  const { loaded, builtins } = JSON.parse(fs.readFileSync(file, 'utf8')) as { loaded: string[]; builtins: string[] };
  return { ours: loaded.filter((u) => u.startsWith('file:')).map((u) => path.relative(ROOT, new URL(u).pathname)), builtins };
}

describe('proxy start-up', () => {
  it("loads undici's very Pool class from its module (cluster.ts falls back to the index should it move)", () => {
    const load = createRequire(import.meta.url);
    expect(load('undici/lib/dispatcher/pool.js')).toBe((load('undici') as { Pool: unknown }).Pool);
  });

  it('no TLS modules without TLS; neither yaml nor valibot on the file already checked; an edit checked in full', async () => {
    const up = await startUpstream('up');
    upstreams.push(up);
    const a = await addresses('web');
    const records = path.join(tmp, 'records');
    fs.mkdirSync(records);
    const proxy: ProxyFile = {
      listeners: [{ name: 'web', address: a.web!.address }],
      app: {
        listeners: { web: { protocol: 'http', routes: [{ match: { prefix: '/' }, cluster: 'main' }] } },
        clusters: { main: { endpoints: [up.address] } },
      },
    };
    let configPath = '';
    const withRecorder = (file: ProxyFile): Record<string, unknown> => {
      const c = fileFor(configPath, file);
      const command = c.command as string[];
      return { ...c, command: [command[0]!, ...NODE_FLAGS, '--import', RECORD, ...command.slice(1 + NODE_FLAGS.length)], env: { RECORD_MODULES_DIR: records } };
    };
    const baton = new BatonProcess((dir) => {
      configPath = `${dir}/baton.yaml`;
      return withRecorder(proxy);
    });
    await baton.active(1);
    expect((await request(a.web!.port, { path: '/' })).body.toString()).toBe('upstream up\n');
    const first = (await baton.status()).generations[0]!.pid;
    expect((await baton.reload()).body.ok).toBe(true);
    const firstLoaded = await loadedBy(records, first);
    // Checked in full (no entry yet), and no TLS anywhere.
    expect(firstLoaded.ours).toEqual(expect.arrayContaining(['proxy/config/config-schema.ts']));
    expect(firstLoaded.ours.filter((m) => /^proxy\/tls\/(tls-server|cert-watch|ticket-keys)\.ts$/.test(m))).toEqual([]);
    expect(firstLoaded.builtins).not.toContain('node:https');
    // undici's Pool, not all of undici (fetch and the rest are the index's).
    expect(firstLoaded.ours).toContain('node_modules/undici/lib/dispatcher/pool.js');
    expect(firstLoaded.ours.filter((m) => /^node_modules\/undici\/(index\.js|lib\/web\/)/.test(m))).toEqual([]);

    expect((await request(a.web!.port, { path: '/' })).body.toString()).toBe('upstream up\n');
    const second = (await baton.status()).generations.find((g) => g.state === 'active')!.pid;
    // An edit: the next generation checks the file in full; a bad one fails the reload.
    fs.writeFileSync(configPath, stringify(withRecorder({ ...proxy, app: { ...proxy.app, clusters: { main: { endpoints: [up.address], timeout: 'soon' } } } })));
    const refused = await baton.reload();
    expect(refused.body.ok).toBe(false);
    expect(refused.body.error?.message).toMatch(/app\.clusters\.main\.timeout/);
    expect((await request(a.web!.port, { path: '/' })).body.toString()).toBe('upstream up\n');
    fs.writeFileSync(configPath, stringify(withRecorder(proxy)));
    expect((await baton.reload()).body.ok).toBe(true);
    const secondLoaded = await loadedBy(records, second);
    // (Their package.json, read for their versions, is part of the cache key.)
    expect(secondLoaded.ours.filter((m) => /^node_modules\/(yaml|valibot)\/(?!package\.json$)|^proxy\/(config-schema|tls\/tls-schema)\.ts$/.test(m))).toEqual([]);
    expect((await request(a.web!.port, { path: '/' })).body.toString()).toBe('upstream up\n');
  });
});
