import { execa } from 'execa';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS } from '../helpers/baton.ts';
import { expectHealthyThenStop } from './control-health.ts';

const dirs: string[] = [];
afterEach(async () => {
  await cleanupAll();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** `baton run --config` on `config` in a fresh directory: the result of a run that is refused before it starts. */
async function runRefused(config: Record<string, unknown>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-cfg-'));
  dirs.push(dir);
  const file = path.join(dir, 'baton.yaml');
  fs.writeFileSync(file, stringify(config));
  const result = await execa(process.execPath, [...NODE_FLAGS, BIN, 'run', '--config', file], {
    reject: false,
    timeout: 30_000,
    env: { BATON_RUNTIME_DIR: path.join(dir, 'run'), BATON_STATS_DIR: dir },
  });
  return { ...result, file, dir };
}

describe('configuration mistakes are found at load, with the key, and exit 2', () => {
  it('an unknown drain-signal', async () => {
    const r = await runRefused(httpConfig(fixture('http-app.ts'), { 'drain-signal': 'SIGFOO' }));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("drain-signal: unknown signal 'SIGFOO': expected one of SIGHUP, SIGINT");
  });

  it('127.0.0.1:P beside 0.0.0.0:P', async () => {
    const r = await runRefused(httpConfig(fixture('http-app.ts'), { listeners: [{ address: '0.0.0.0:18481' }, { address: '127.0.0.1:18481' }] }));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("listeners[1].address: '127.0.0.1:18481' overlaps listener 'tcp18481' (0.0.0.0:18481)");
  });

  it('a listener whose address is taken: exit 2 with the listener and its address', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const r = await runRefused(httpConfig(fixture('http-app.ts'), { listeners: [{ name: 'web', address: `127.0.0.1:${port}` }] }));
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port} (listener 'web'): EADDRINUSE`);
      expect(fs.readdirSync(r.dir).filter((f) => f.startsWith('baton-'))).toEqual([]);
    } finally {
      holder.close();
    }
  });

  it('a cwd that does not exist is named, not reported as baton-exec missing', async () => {
    const r = await runRefused(httpConfig(fixture('http-app.ts'), { cwd: '/nonexistent/release-7' }));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('cwd: the working directory /nonexistent/release-7 does not exist');
    expect(r.stderr).not.toContain('baton-exec');
  });
});

describe('a reload that changes what only a restart applies fails, and the generation keeps serving', () => {
  for (const [key, change] of [
    ['control-socket', (dir: string) => ({ 'control-socket': path.join(dir, 'elsewhere.sock') })],
    ['stats.dir', (dir: string) => ({ stats: { dir } })],
    ['name', () => ({ name: 'renamed' })],
  ] as const) {
    it(key, async () => {
      const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
      await baton.active(1);
      const port = await baton.port();
      baton.writeConfig(httpConfig(fixture('http-app.ts'), change(baton.dir)));
      const reload = await baton.reload();
      expect(reload.status).toBe(409);
      expect(reload.body.error?.message).toContain(`${key} cannot change on reload (${key} from `);
      expect(reload.body.error?.message).toContain('restart Baton or run baton upgrade');
      baton.writeConfig(httpConfig(fixture('http-app.ts')));
      await expectHealthyThenStop(baton, port, 1);
    });
  }

  it('a cwd removed since the start: the reload names it', async () => {
    const release = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-release-'));
    dirs.push(release);
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { cwd: release }));
    await baton.active(1);
    const port = await baton.port();
    fs.rmSync(release, { recursive: true });
    const reload = await baton.reload();
    expect(reload.status).toBe(409);
    expect(reload.body.error?.message).toContain(`cwd: the working directory ${release} does not exist`);
    fs.mkdirSync(release);
    await expectHealthyThenStop(baton, port, 1);
  });

  it('a cwd removed under a running instance: the crash restart names it, and serves again once it is back', async () => {
    const release = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-release-'));
    dirs.push(release);
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts'), { cwd: release, restart: { 'backoff-initial': '200ms', 'backoff-max': '500ms', 'max-failures': 50 } }));
    await baton.active(1);
    const port = await baton.port();
    const first = (await baton.status()).generations[0]!.pid;
    fs.rmSync(release, { recursive: true });
    process.kill(first, 'SIGKILL');
    // The generation's own last words: what its launcher wrote to stderr.
    const failed = await baton.waitForEvent('restarting', (e) => e.stderr.some((t) => t.includes('spawn failed')));
    expect(failed.stderr.join('\n')).toContain(`spawn failed: the working directory ${release} (cwd) does not exist`);
    expect(failed.stderr.join('\n')).not.toContain('baton-exec');
    fs.mkdirSync(release);
    const back = await baton.waitForEvent('generation-active', (e) => e.why === 'restart');
    await expectHealthyThenStop(baton, port, back.generation);
  });
});
