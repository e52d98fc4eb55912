/**
 * A client command (`baton reload`, `status`, `stop`, …) loads only the control client: not the
 * config schema (valibot, yaml), the logger, the supervisor, nor what an ES module import of node:http
 * drags in (undici, http2, tls) — issue #19: it sits on a deploy's path, so its start-up is part
 * of every reload's time. Each command still does its
 * job against a running instance; `--config` still finds the instance (and only then loads the schema).
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS, ROOT } from '../helpers/baton.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-cli-modules-'));
afterEach(cleanupAll);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let runs = 0;
/** Runs `baton ARGS` with the module recorder; the exit code, output and what it loaded. */
async function recorded(b: BatonProcess, args: string[]) {
  const file = path.join(tmp, `modules-${(runs += 1)}.json`);
  const r = await execa(process.execPath, [...NODE_FLAGS, '--import', path.join(ROOT, 'test/fixtures/record-modules.mjs'), BIN, ...args], {
    reject: false,
    env: { RECORD_MODULES: file, BATON_STATS_DIR: b.statsDir, BATON_RUNTIME_DIR: path.join(b.dir, 'run') },
  });
  const { loaded, builtins } = JSON.parse(fs.readFileSync(file, 'utf8')) as { loaded: string[]; builtins: string[] };
  const ours = loaded.filter((u) => u.startsWith('file:')).map((u) => path.relative(ROOT, new URL(u).pathname));
  return { ...r, ours, builtins };
}

const HEAVY = /node_modules\/(valibot|yaml|pino|pino-pretty|re2js|chokidar|undici)\/|^supervisor\/(core|config|control|sockets|handover|canary|memory|dev)\//;

describe('client commands load only the control client', () => {
  it('status, reload, status --json and stop do their job without the schema, the supervisor or undici', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await b.active(1);
    const socket = ['--control-socket', b.socketPath];

    const table = await recorded(b, ['status', ...socket]);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/\n1\s+\d+\s+active\s/);

    const reload = await recorded(b, ['reload', ...socket]);
    expect(reload.exitCode, reload.stderr).toBe(0);
    expect(reload.stdout).toMatch(/^reloaded: generation 2 \(pid \d+\) ready in /);

    const json = await recorded(b, ['status', '--json', ...socket]);
    expect(JSON.parse(json.stdout)).toMatchObject({ instance: 'test', active: 2 });

    for (const r of [table, reload, json]) {
      expect(r.ours).toContain('supervisor/cli/control-client.ts');
      expect(r.ours.filter((m) => HEAVY.test(m))).toEqual([]);
      expect(r.builtins.filter((m) => /undici|http2|^node:tls$/.test(m))).toEqual([]);
      // node:fs's ES facade, which reads its lazy ReadStream export, is not how a client reaches fs.
      expect(r.builtins).not.toContain('node:internal/fs/streams');
    }

    const stop = await recorded(b, ['stop', ...socket]);
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(stop.ours.filter((m) => HEAVY.test(m))).toEqual([]);
    expect((await b.exited).exitCode).toBe(0);
  });

  it('--config finds the instance from its file (loading the schema only then); --name from the runtime directory', async () => {
    const b = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await b.active(1);
    const byConfig = await recorded(b, ['reload', '--config', b.configPath]);
    expect(byConfig.exitCode, byConfig.stderr).toBe(0);
    expect(byConfig.stdout).toMatch(/^reloaded: generation 2 /);
    expect(byConfig.ours).toContain('supervisor/config/config.ts');

    const byName = await recorded(b, ['status', '--json', '--name', 'test']);
    expect(byName.exitCode, byName.stderr).toBe(0);
    expect(JSON.parse(byName.stdout)).toMatchObject({ instance: 'test', active: 2 });
    expect(byName.ours.filter((m) => HEAVY.test(m))).toEqual([]);
  });

  it('version loads nothing of the supervisor either', async () => {
    const file = path.join(tmp, 'version.json');
    const r = await execa(process.execPath, [...NODE_FLAGS, '--import', path.join(ROOT, 'test/fixtures/record-modules.mjs'), BIN, 'version'], {
      reject: false,
      env: { RECORD_MODULES: file },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^baton \d+\.\d+\.\d+ \(protocol \d+, stats /);
    const { loaded } = JSON.parse(fs.readFileSync(file, 'utf8')) as { loaded: string[] };
    expect(loaded.map((u) => (u.startsWith('file:') ? path.relative(ROOT, new URL(u).pathname) : u)).filter((m) => HEAVY.test(m))).toEqual([]);
  });
});
