/**
 * What the SDK loads into a generation (issue #19): what a generation needs before it is ready,
 * not the stats segment, the memory tools or reporter, nor node:https / http2 / tls (an app that
 * serves TCP gets none of them). The deferred parts still work when they are needed: a served
 * request is counted in the segment, and the memory reporter's figures arrive.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, httpConfig, NODE_FLAGS, ROOT } from '../helpers/baton.ts';
import { get } from '../helpers/ports.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-sdk-imports-'));
afterEach(cleanupAll);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const RECORD = path.join(ROOT, 'test/fixtures/record-modules.mjs');
const app = (name: string): string[] => [process.execPath, ...NODE_FLAGS, '--import', RECORD, path.join(ROOT, 'test/fixtures', name)];

function recorded(file: string): { ours: string[]; builtins: string[] } {
  const { loaded, builtins } = JSON.parse(fs.readFileSync(file, 'utf8')) as { loaded: string[]; builtins: string[] };
  return { ours: loaded.filter((u) => u.startsWith('file:')).map((u) => path.relative(ROOT, new URL(u).pathname)), builtins };
}

async function exitedRecord(file: string): Promise<{ ours: string[]; builtins: string[] }> {
  await expect.poll(() => fs.existsSync(file), { timeout: 20_000 }).toBe(true);
  return recorded(file);
}

const DEFERRED = /^(shared\/stats\/(stats|segment|exposition)|shared\/native\/native|child\/memory-(reporter|actions)|child\/runtime-health)\.ts$/;

describe('what the SDK loads', () => {
  it('a TCP app under Baton: nothing deferred before its drain, and no https, http2, tls or undici', async () => {
    const file = path.join(tmp, 'tcp.json');
    const b = new BatonProcess({
      ...httpConfig(app('tcp-app.ts')),
      listeners: [{ name: 'tcp', address: '127.0.0.1:0' }],
      env: { RECORD_MODULES: file },
      // Baton's preload would come before the recorder's (and load the SDK unseen); this app needs none.
      preload: 'off',
    });
    await b.active(1);
    const port = await b.port();
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let text = '';
      s.on('data', (c: Buffer) => (text += c.toString()));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    expect(answer).toMatch(/^generation 1 pid \d+/);
    // The reload drains generation 1, which writes what it loaded at its exit.
    expect((await b.reload()).body.ok).toBe(true);
    const { ours, builtins } = await exitedRecord(file);
    expect(ours).toContain('child/sdk.ts');
    expect(ours.filter((m) => DEFERRED.test(m))).toEqual([]);
    expect(builtins.filter((m) => /^node:(https|http2|tls)$|undici/.test(m))).toEqual([]);
  });

  it('an HTTP app: its first request loads the stats segment and is counted; the memory reporter reports after its interval', async () => {
    const file = path.join(tmp, 'http.json');
    const b = new BatonProcess(httpConfig(app('http-app.ts'), { env: { RECORD_MODULES: file }, memory: { interval: '300ms' } }));
    await b.active(1);
    const port = await b.port();
    expect((await get({ port })).body).toMatch(/^generation 1 /);
    await expect
      .poll(async () => {
        const r = await b.cli('stats', '--name', 'test', '--json', '--filter', '^baton\\.http\\.requests$');
        const samples = (JSON.parse(r.stdout) as { stats?: { name: string; value?: number }[] }).stats ?? [];
        return samples.reduce((n, s) => n + (s.value ?? 0), 0);
      }, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(1);
    // The child's own memory figures (RSS as the generation sees it) come from the reporter.
    await expect.poll(async () => (await b.cli('memory', '--segment', '--name', 'test', '--json')).stdout, { timeout: 10_000 }).toMatch(/"heapUsed":\s*[1-9]/);
    expect((await b.reload()).body.ok).toBe(true);
    const { ours } = await exitedRecord(file);
    expect(ours).toEqual(expect.arrayContaining(['shared/stats/stats.ts', 'child/memory/memory-reporter.ts']));
  });
});
