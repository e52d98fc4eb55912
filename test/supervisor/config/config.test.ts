import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, validateConfig } from '../../../supervisor/config/config.ts';
import { formatDuration, parseDuration } from '../../../shared/units.ts';

const where = '/etc/shop/baton.yaml';
const validate = (raw: Record<string, unknown>) => validateConfig({ command: 'node app.js', ...raw }, where, '/etc/shop');

/** The ERR_CONFIG message validateConfig throws for `raw`. */
function problem(raw: Record<string, unknown>): string {
  try {
    validate(raw);
  } catch (err) {
    expect(err).toMatchObject({ code: 'ERR_CONFIG' });
    return (err as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
}

describe('validateConfig', () => {
  it('fills in the defaults', () => {
    expect(validate({})).toEqual({
      name: 'baton',
      command: ['node', 'app.js'],
      cwd: '/etc/shop',
      env: {},
      listeners: [],
      memory: {
        interval: 5000,
        window: 600_000,
        history: 3_600_000,
        replaceCooldown: 600_000,
        growth: { minSlope: 1024 * 1024, minGrowth: 4 * 1024 * 1024, minR2: 0.8, loadTolerance: 0.5 },
        allocator: 'default',
      },
      readyTimeout: 10_000,
      drainTimeout: 30_000,
      shutdownTimeout: 5_000,
      acceptGrace: 5_000,
      readiness: { mode: 'auto' },
      drainSignal: 'SIGTERM',
      restart: { maxFailures: 5, window: 60_000, backoffInitial: 100, backoffMax: 10_000 },
      runtimeListeners: 'loopback',
      logLevel: 'info',
      stats: { dir: '/dev/shm', maxBytes: 64 * 1024 * 1024, maxNameLength: 1024, capacities: {} },
      maxDraining: 3,
      preload: 'auto',
      pacedClose: 0.5,
    });
  });

  it('reads stats limits and capacities', () => {
    const c = validate({ stats: { dir: 'shm', 'max-bytes': '1MiB', writers: 8, 'arena-bytes': '64KiB' } });
    expect(c.stats).toEqual({ dir: '/etc/shop/shm', maxBytes: 1024 * 1024, maxNameLength: 1024, capacities: { writers: 8, arenaBytes: 65536 } });
  });

  it('reads durations as 250ms, 10s, 1m or plain milliseconds', () => {
    const c = validate({ 'ready-timeout': '250ms', 'drain-timeout': '10s', 'shutdown-timeout': 1500, restart: { window: '1m' }, warmup: '1s' });
    expect([c.readyTimeout, c.drainTimeout, c.shutdownTimeout, c.restart.window, c.warmup]).toEqual([250, 10_000, 1500, 60_000, 1_000]);
    expect(validate({ warmup: 0 }).warmup).toBeUndefined();
    expect(validate({ 'draining-memory-budget': '512MiB' }).drainingMemoryBudget).toBe(512 * 1024 * 1024);
    expect(() => validate({ warmup: 'soon' })).toThrow(/warmup/);
  });

  it('reads cpu-scheduling as a policy the exec shim knows, absent by default (inherited)', () => {
    expect(validate({}).cpuScheduling).toBeUndefined();
    expect(validate({ 'cpu-scheduling': 'batch' }).cpuScheduling).toBe('batch');
    expect(() => validate({ 'cpu-scheduling': 'fifo' })).toThrow(/cpu-scheduling: .*"other".*"batch".*"idle"/);
  });

  it('splits a command string and keeps a command array as given', () => {
    expect(validate({ command: '  node   server.js --port 8080 ' }).command).toEqual(['node', 'server.js', '--port', '8080']);
    expect(validate({ command: ['node', 'my server.js'] }).command).toEqual(['node', 'my server.js']);
  });

  it('names listeners after their port or socket file and keeps their canonical key', () => {
    const c = validate({ listeners: [{ address: 'localhost:8080' }, { address: 'unix:/run/shop/app.sock', mode: '0660' }, { name: 'v6', address: '[0::1]:81' }] });
    expect(c.listeners).toEqual([
      { name: 'tcp8080', address: { kind: 'tcp', host: '127.0.0.1', port: 8080 }, key: '127.0.0.1:8080', backlog: 511 },
      { name: 'app.sock', address: { kind: 'unix', path: '/run/shop/app.sock' }, key: 'unix:/run/shop/app.sock', backlog: 511, mode: 0o660 },
      { name: 'v6', address: { kind: 'tcp', host: '::1', port: 81 }, key: '[::1]:81', backlog: 511 },
    ]);
  });

  it('turns readiness http forms into accepting plus a probe', () => {
    const listeners = [{ name: 'web', address: '8080' }];
    expect(validate({ listeners, readiness: 'http:/healthz' }).readiness).toEqual({ mode: 'accepting', http: { path: '/healthz' } });
    expect(validate({ listeners, readiness: { http: '/up', listener: 'web' } }).readiness).toEqual({
      mode: 'accepting',
      http: { path: '/up', listener: 'web' },
    });
    expect(problem({ listeners, readiness: { http: '/up', listener: 'api' } })).toContain("readiness.http: no listener named 'api'");
    expect(problem({ readiness: 'http:/up' })).toContain('readiness.http: needs a listener to send the probe through');
  });

  it('takes notify and tcp; tcp needs a TCP listener to connect through', () => {
    expect(validate({ readiness: 'notify' }).readiness).toEqual({ mode: 'notify' });
    expect(validate({ listeners: [{ address: '8080' }], readiness: 'tcp' }).readiness).toEqual({ mode: 'tcp' });
    expect(validate({ listeners: [{ address: '/run/a.sock' }, { address: '8080' }], readiness: 'tcp' }).readiness).toEqual({ mode: 'tcp' });
    expect(problem({ readiness: 'tcp' })).toContain('readiness: tcp needs a TCP listener to connect through');
    expect(problem({ listeners: [{ address: '/run/a.sock' }], readiness: 'tcp' })).toContain('readiness: tcp needs a TCP listener');
  });

  it('names the key path, the source and what was expected', () => {
    expect(problem({ listeners: [{ address: 'example.com:80' }] })).toBe(
      `invalid configuration in ${where}:\n  listeners[0].address: invalid address 'example.com:80': expected HOST:PORT with a numeric IPv4 host, [IPv6]:PORT, a port alone, unix:/path or /path`,
    );
    expect(problem({ 'ready-timeout': 'soon' })).toContain("\n  ready-timeout: invalid duration 'soon': expected a number of milliseconds or a value like 250ms, 10s, 1m");
    expect(problem({ bogus: 1 })).toBe(`invalid configuration in ${where}:\n  bogus: unknown key`);
    expect(problem({ restart: { 'max-failures': 0 } })).toMatch(/\n {2}restart\.max-failures: .*>=1/);
    expect(problem({ readiness: 'soon' })).toContain('readiness: expected auto, sdk, accepting, notify, tcp or http:/PATH');
    expect(problem({ 'drain-signal': 'TERM' })).toContain('drain-signal: expected a signal name such as "SIGTERM"');
    expect(problem({ 'drain-signal': 'SIGFOO' })).toContain("drain-signal: unknown signal 'SIGFOO': expected one of SIGHUP, SIGINT");
    expect(problem({ listeners: [{ address: '/run/a.sock', mode: '999' }] })).toContain('listeners[0].mode: expected an octal mode such as "0660"');
  });

  it('lists every problem, one line each', () => {
    const lines = problem({ bogus: 1, 'drain-timeout': 'x', listeners: [{ address: '1' }, { address: 'nope' }] }).split('\n');
    expect(lines[0]).toBe(`invalid configuration in ${where}:`);
    expect(lines.slice(1).map((l) => l.split(':')[0]?.trim()).sort()).toEqual(['bogus', 'drain-timeout', 'listeners[1].address']);
  });

  it('says what was expected for a wrongly typed duration or command', () => {
    expect(problem({ 'ready-timeout': true })).toMatch(/ready-timeout: .*expected/);
    expect(problem({ command: 42 })).toMatch(/command: .*expected/);
  });

  it('refuses duplicate listener names and addresses', () => {
    expect(problem({ listeners: [{ name: 'web', address: '8080' }, { name: 'web', address: '8081' }] })).toContain(
      "listeners[1].name: 'web' is used twice",
    );
    expect(problem({ listeners: [{ name: 'a', address: '127.0.0.1:8080' }, { name: 'b', address: 'localhost:8080' }] })).toContain(
      "listeners[1].address: '127.0.0.1:8080' is used twice",
    );
  });

  it('refuses listeners whose sockets would take the same port: a wildcard beside a host of its family', () => {
    const overlap = (a: string, b: string): string => problem({ listeners: [{ address: a }, { address: b }] });
    expect(overlap('0.0.0.0:8080', '127.0.0.1:8080')).toContain(
      "listeners[1].address: '127.0.0.1:8080' overlaps listener 'tcp8080' (0.0.0.0:8080): 0.0.0.0:8080 takes port 8080 on every IPv4 address, so binding both fails (EADDRINUSE); keep one",
    );
    expect(overlap('127.0.0.1:8080', '[::]:8080')).toContain("listeners[1].address: '[::]:8080' overlaps listener 'tcp8080' (127.0.0.1:8080)");
    for (const [a, b] of [['127.0.0.1:8080', '127.0.0.2:8080'], ['0.0.0.0:8080', '[::1]:8080'], ['0.0.0.0:0', '127.0.0.1:0'], ['0.0.0.0:8080', '127.0.0.1:8081']]) {
      expect(() => validateConfig({ command: 'x', listeners: [{ address: a }, { address: b }] }, 'f', '/')).not.toThrow();
    }
  });

  it('refuses a mode on a TCP listener', () => {
    expect(problem({ listeners: [{ address: '8080', mode: '0600' }] })).toBe(
      `invalid configuration in ${where}:\n  listeners[0].mode: only Unix socket listeners have a mode`,
    );
  });

  it('requires a command', () => {
    expect(() => validateConfig({}, where, '/')).toThrow(`invalid configuration in ${where}:\n  command: required (or give it after --)`);
  });
});

describe('loadConfig', () => {
  it('resolves cwd and control-socket against the config file directory', () => {
    const f = file('app/baton.yaml', 'command: node server.js\ncwd: ../release\ncontrol-socket: run/ctl.sock\n');
    const c = loadConfig(f, {});
    expect(c.cwd).toBe(path.join(dir, 'release'));
    expect(c.controlSocket).toBe(path.join(dir, 'app/run/ctl.sock'));
    expect(c.file).toBe(f);
    expect(loadConfig(file('abs.yaml', 'command: x\ncwd: /srv/x\n'), {}).cwd).toBe('/srv/x');
  });

  it('names a working directory that does not exist, at load, beside the other problems', () => {
    const f = file('nocwd.yaml', 'command: x\ncwd: /nonexistent/release\ndrain-signal: SIGFOO\n');
    expect(() => loadConfig(f, {}, { requireCwd: true })).toThrow('cwd: the working directory /nonexistent/release does not exist');
    expect(() => loadConfig(f, {}, { requireCwd: true })).toThrow("drain-signal: unknown signal 'SIGFOO'");
    // A client reading the name, or a config meant for another host, does not need it.
    expect(() => loadConfig(file('nocwd2.yaml', 'command: x\ncwd: /nonexistent/release\n'), {})).not.toThrow();
  });

  it('lets command-line values override the file, except an empty listener list', () => {
    const f = file('over.yaml', "command: node a.js\nlisteners:\n  - address: '8080'\n");
    const c = loadConfig(f, { command: ['node', 'b.js'], listeners: [], 'drain-timeout': undefined });
    expect(c.command).toEqual(['node', 'b.js']);
    expect(c.listeners.map((l) => l.key)).toEqual(['127.0.0.1:8080']);
    expect(c.drainTimeout).toBe(30_000);
  });

  it('names the file in validation errors', () => {
    const f = file('bad.yaml', 'command: x\nready-timeout: eventually\n');
    expect(() => loadConfig(f, {})).toThrow(`invalid configuration in ${f}:\n  ready-timeout: invalid duration 'eventually'`);
  });

  it('reports a YAML syntax error with its line', () => {
    const f = file('syntax.yaml', "command: x\nlisteners:\n  - address: '8080'\n   - address: '9090'\n");
    expect(() => loadConfig(f, {})).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^invalid YAML in ${f}: .* at line 4, column 4`)) }),
    );
    const dup = file('dup.yaml', 'command: x\ncommand: y\n');
    expect(() => loadConfig(dup, {})).toThrow(/invalid YAML in .*dup\.yaml: .*line 2/s);
  });

  it('refuses a file that is not a mapping, and a file that cannot be read', () => {
    expect(() => loadConfig(file('list.yaml', '- a\n- b\n'), {})).toThrow('expected a mapping at the top level');
    expect(() => loadConfig(path.join(dir, 'missing.yaml'), {})).toThrow(/^cannot read config .*missing\.yaml: ENOENT/);
  });

  it('without a file, says the command line is the source', () => {
    expect(() => loadConfig(undefined, { command: ['x'], 'ready-timeout': 'x' })).toThrow(/^invalid configuration in the command line:/);
  });
});

describe('duration', () => {
  it('parses units, fractions and plain milliseconds', () => {
    expect(['250ms', '10s', '1m', '1.5m', '2h', ' 15 s ', '40', 0, 1200].map(parseDuration)).toEqual([
      250, 10_000, 60_000, 90_000, 7_200_000, 15_000, 40, 0, 1200,
    ]);
  });

  it('refuses anything else, saying what was expected', () => {
    for (const bad of ['', 'soon', '10 sec', '-5s', '1e3', -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => parseDuration(bad)).toThrow(/^invalid duration '.*': expected a number of milliseconds or a value like 250ms, 10s, 1m$/);
    }
  });

  it('formats milliseconds for people', () => {
    expect([0, 850, 1000, 12_345, 60_000, 245_000, 3_600_000, 3_660_000].map(formatDuration)).toEqual([
      '0ms', '850ms', '1.0s', '12.3s', '1m00s', '4m05s', '1h00m', '1h01m',
    ]);
  });
});
