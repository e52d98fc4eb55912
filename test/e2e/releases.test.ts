import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, NODE_FLAGS, ROOT, cleanupAll } from '../helpers/baton.ts';
import { describeCounts, startLoad } from '../helpers/load.ts';
import { freePort, get } from '../helpers/ports.ts';

const dirs: string[] = [];
afterEach(async () => {
  await cleanupAll();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A release: an unmodified server (run with Baton's preload) answering with its name. */
function release(root: string, name: string, body = `server.listen(Number(process.env.APP_PORT));`): void {
  fs.mkdirSync(path.join(root, 'releases', name), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'releases', name, 'app.mjs'),
    `import http from 'node:http';\nconst server = http.createServer((req, res) => res.end('${name}\\n'));\n${body}\n`,
  );
}

/** What a new connection gets: once the old generation has taken its drain message, only the new one accepts. */
const answers = async (port: number): Promise<string> => (await get({ port })).body;

function point(root: string, name: string): void {
  // Swapped atomically, as a deploy tool would: a new link renamed over the old one.
  fs.symlinkSync(path.join('releases', name), path.join(root, 'current.new'));
  fs.renameSync(path.join(root, 'current.new'), path.join(root, 'current'));
}

/** A supervisor running `current/app.mjs` under `root` (the release `current` names), with generation 1 serving. */
async function serve(root: string): Promise<{ baton: BatonProcess; port: number }> {
  const appPort = await freePort();
  const baton = new BatonProcess({
    name: 'test',
    command: [process.execPath, ...NODE_FLAGS, '--import', path.join(ROOT, 'child/register.ts'), 'current/app.mjs'],
    cwd: root,
    env: { APP_PORT: String(appPort) },
    listeners: [{ name: 'http', address: `127.0.0.1:${appPort}` }],
    'ready-timeout': '20s',
    'drain-timeout': '5s',
  });
  await baton.active(1);
  return { baton, port: await baton.port() };
}

describe('releases behind a symlink', () => {
  it('each reload runs the release the link names now; a broken release leaves the last good one serving', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-releases-'));
    dirs.push(root);
    release(root, 'v1');
    release(root, 'v2');
    release(root, 'v3', `throw new Error('v3 cannot start');`);
    point(root, 'v1');
    const { baton, port } = await serve(root);
    expect((await get({ port })).body).toBe('v1\n');
    const load = startLoad({ port }, { keepAlive: 2, newConnection: 2 });
    await load.progress(3);

    point(root, 'v2');
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    await expect.poll(() => answers(port), { timeout: 5_000 }).toBe('v2\n');
    await load.progress(3);

    point(root, 'v3');
    const failed = await baton.reload();
    expect(failed.body.ok).toBe(false);
    expect(failed.body.error?.message).toContain('v3 cannot start');
    expect((await get({ port })).body).toBe('v2\n');

    // Rolling back is pointing the link back and reloading.
    point(root, 'v1');
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 4 });
    await expect.poll(() => answers(port), { timeout: 5_000 }).toBe('v1\n');
    await load.progress(3);
    const counts = await load.stop();
    expect(counts.ok, describeCounts(counts)).toBe(counts.requests);
    expect(new Set(counts.bodies)).toEqual(new Set(['v1', 'v2']));
  }, 90_000);

  it('baton rollback, with no canary window, runs the previous release again though the link names the new one; 0 failed under load', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-releases-'));
    dirs.push(root);
    release(root, 'v1');
    release(root, 'v2');
    point(root, 'v1');
    const { baton, port } = await serve(root);
    const load = startLoad({ port }, { keepAlive: 2, newConnection: 2 });
    await load.progress(3);
    point(root, 'v2');
    expect((await baton.reload()).body).toMatchObject({ ok: true, generation: 2 });
    await expect.poll(() => answers(port), { timeout: 5_000 }).toBe('v2\n');
    await load.progress(3);

    const rollback = await baton.cli('rollback');
    expect(rollback.stdout).toBe('rolled back: generation 3 runs the release of generation 1 again, generation 2 drains');
    expect(rollback.exitCode).toBe(0);
    await expect.poll(() => answers(port), { timeout: 5_000 }).toBe('v1\n');
    expect(fs.readlinkSync(path.join(root, 'current'))).toBe(path.join('releases', 'v2'));
    expect(await baton.waitForEvent('rolled-back')).toMatchObject({ generation: 3, release: 1, replaced: 2 });
    await load.progress(3);
    // Nothing before v1: a second rollback says so and changes nothing.
    const again = await baton.cli('rollback');
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toBe('baton: nothing to roll back to: generation 3 runs the first release this supervisor started');
    const counts = await load.stop();
    expect(counts.ok, describeCounts(counts)).toBe(counts.requests);
    expect(new Set(counts.bodies)).toEqual(new Set(['v1', 'v2']));
  }, 90_000);
});
