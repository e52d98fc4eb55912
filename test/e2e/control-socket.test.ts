import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { isRoot, requestAs, SKIP_NOT_ROOT } from '../helpers/control-peer.ts';

afterEach(cleanupAll);

const NOBODY = 65534;

describe('control socket', () => {
  it('is owner-only: 0600 in a 0700 directory', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    expect(fs.statSync(baton.socketPath).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(baton.socketPath)).mode & 0o777).toBe(0o700);
  });

  it.skipIf(!isRoot)(`refuses a peer of another uid even when the file modes let it connect (${isRoot ? 'as root' : SKIP_NOT_ROOT})`, async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const blocked = await requestAs({ uid: NOBODY, gid: NOBODY }, baton.socketPath);
    expect(blocked).toMatchObject({ error: 'EACCES' });

    // Loosen the modes, as a careless operator might: the uid check still stands.
    fs.chmodSync(baton.dir, 0o755);
    fs.chmodSync(path.dirname(baton.socketPath), 0o755);
    fs.chmodSync(baton.socketPath, 0o666);
    const refused = await requestAs({ uid: NOBODY, gid: NOBODY }, baton.socketPath);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('ERR_PEER_REJECTED');
    expect(refused.body).toContain(`uid ${NOBODY} may not control this instance (owner uid 0; peer gid ${NOBODY}, pid ${refused.pid})`);
    await baton.waitForEvent('control-refused', (e) => e.uid === NOBODY && e.peerPid === refused.pid);
    expect((await baton.status()).active).toBe(1);
  });

  it('answers bad requests with a clear 4xx and changes nothing', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const { controlRequest } = await import('../../supervisor/cli/control-client.ts');
    const unknown = await controlRequest(baton.socketPath, 'GET', '/nope');
    expect(unknown.status).toBe(404);
    expect(JSON.stringify(unknown.body)).toContain('endpoints: GET /status, GET /stats, GET /metrics, POST /reload, POST /upgrade, GET /events, POST /rollback, POST /promote, POST /stop');
    const wrongMethod = await controlRequest(baton.socketPath, 'GET', '/reload');
    expect(wrongMethod.status).toBe(405);
    expect((await baton.status()).generations).toHaveLength(1);
  });

  it('refuses to start a second instance with the same control socket', async () => {
    const first = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await first.active(1);
    const second = await execa(process.execPath, ['--disable-warning=ExperimentalWarning', 'bin/baton', 'run', '--control-socket', first.socketPath, '--', ...fixture('http-app.ts')], {
      reject: false,
      cwd: path.resolve(import.meta.dirname, '../..'),
    });
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(`is already running (pid ${first.proc.pid}) with control socket ${first.socketPath}`);
    expect((await first.status()).active).toBe(1);
  });
});
