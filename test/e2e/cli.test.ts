import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS } from '../helpers/baton.ts';
import { get } from '../helpers/ports.ts';

const temps: string[] = [];
afterEach(async () => {
  await cleanupAll();
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function temp(prefix = path.join(os.tmpdir(), 'baton-cli-')): string {
  const dir = fs.mkdtempSync(prefix);
  temps.push(dir);
  return dir;
}

function baton(...args: string[]) {
  return execa(process.execPath, [...NODE_FLAGS, BIN, ...args], {
    reject: false,
    env: { BATON_RUNTIME_DIR: temp(), BATON_STATS_DIR: temp('/dev/shm/baton-cli-') },
  });
}

function configFile(text: string): string {
  const dir = temp();
  const file = path.join(dir, 'baton.yaml');
  fs.writeFileSync(file, text);
  return file;
}

describe('baton run: bad input is refused with exit code 2 and a message naming the key', () => {
  const cases: [string, string, string[]][] = [
    ['a bad address', 'command: [node, x.js]\nlisteners:\n  - address: nowhere:80\n', ['listeners[0].address', "invalid address 'nowhere:80'"]],
    ['an unknown key', 'command: [node, x.js]\nbogus: 1\n', ['  bogus: unknown key']],
    ['a bad duration', 'command: [node, x.js]\nready-timeout: soon\n', ['ready-timeout', "invalid duration 'soon'"]],
    ['no command', 'listeners: []\n', ['command: required']],
    ['broken YAML', 'command: [node, x.js\n', ['invalid YAML in', 'line']],
  ];
  for (const [what, text, expected] of cases) {
    it(what, async () => {
      const file = configFile(text);
      const result = await baton('run', '--config', file);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(file);
      for (const e of expected) expect(result.stderr).toContain(e);
    });
  }

  it('an unknown option', async () => {
    const result = await baton('run', '--bogus', '--', 'node', 'x.js');
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("Unknown option '--bogus'");
  });

  it('a command without --', async () => {
    const result = await baton('run', 'node', 'x.js');
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('put the command after --');
  });

  it('a listener that cannot be bound exits 2 naming it and the errno', async () => {
    const first = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await first.active(1);
    const port = await first.port();
    const result = await baton('run', '--listen', `127.0.0.1:${port}`, '--', ...fixture('http-app.ts'));
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${port} (listener 'tcp${port}'): EADDRINUSE`);
  });
});

describe('baton run, status, reload and stop', () => {
  it('drives a running instance from the command line and signals', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await b.active(1);
    const port = await b.port();

    const table = await b.cli('status');
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toMatch(/GEN\s+PID\s+STATE\s+UPTIME\s+CONNS/);
    expect(table.stdout).toMatch(/\n1\s+\d+\s+active\s/);
    const json = JSON.parse((await b.cli('status', '--json')).stdout);
    expect(json).toMatchObject({ instance: 'test', active: 1, listeners: [{ name: 'http', address: `127.0.0.1:${port}` }] });

    const reloaded = await b.cli('reload');
    expect(reloaded.exitCode).toBe(0);
    expect(reloaded.stdout).toMatch(/^reloaded: generation 2 \(pid \d+\) ready in /);

    process.kill(b.pid, 'SIGHUP');
    await b.active(3);
    expect((await get({ port })).body).toMatch(/^generation 3 /);

    const stopped = await b.cli('stop');
    expect(stopped.exitCode).toBe(0);
    expect((await b.exited).exitCode).toBe(0);
    await b.waitForEvent('stopped', (e) => !e.handedOver);
    // A clean stop removes the shared stats segment.
    expect(fs.readdirSync(b.statsDir)).toEqual([]);
  });

  it('SIGINT drains and exits 0; a second SIGINT forces', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts'), { 'drain-timeout': '30s' }));
    await b.active(1);
    const port = await b.port();
    const held = get({ port }, '/slow?ms=30000').catch(() => 'cut');
    await expect.poll(async () => (await b.status()).generations[0]?.connections).toBe(1);
    process.kill(b.pid, 'SIGINT');
    await b.workerState(1, 'draining');
    process.kill(b.pid, 'SIGINT');
    await b.waitForEvent('stop-forced');
    expect((await b.exited).exitCode).toBe(0);
    expect(await held).toBe('cut');
  });

  it('status of an instance that is not running says so', async () => {
    const result = await baton('status', '--name', 'nobody-runs-this');
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('no Baton instance answers at');
    expect(result.stderr).toContain('is it running?');
  });
});

describe('compile cache', () => {
  const run = (runtime: string) =>
    execa(process.execPath, [...NODE_FLAGS, BIN, 'version'], { reject: false, env: { BATON_RUNTIME_DIR: runtime } });

  it("keeps Baton's compiled modules in its private runtime directory, once there is one", async () => {
    const runtime = path.join(temp(), 'run');
    expect((await run(runtime)).exitCode).toBe(0);
    expect(fs.existsSync(runtime)).toBe(false);
    fs.mkdirSync(runtime, { mode: 0o700 });
    expect((await run(runtime)).exitCode).toBe(0);
    // Node versions without a compile cache for stripped TypeScript (22) write nothing there.
    const cached = fs.existsSync(path.join(runtime, 'compile-cache')) ? fs.readdirSync(path.join(runtime, 'compile-cache'), { recursive: true }) : [];
    if (Number(process.versions.node.split('.')[0]) >= 24) expect(cached.length).toBeGreaterThan(0);
  });

  it('uses no cache in a runtime directory others can write to', async () => {
    const runtime = temp();
    fs.chmodSync(runtime, 0o777);
    expect((await run(runtime)).exitCode).toBe(0);
    expect(fs.existsSync(path.join(runtime, 'compile-cache'))).toBe(false);
  });
});
