/**
 * The command line helps a user who is lost: `--help` on every command, the nearest command for a
 * typo, a clear exit 1 for a generation that does not exist, and a second supervisor of a running
 * instance naming the first one's pid.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { commandUsage, nearestCommand, wantsHelp } from '../../supervisor/cli/help.ts';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS } from '../helpers/baton.ts';

const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-cli-usage-'));
afterEach(cleanupAll);
afterAll(() => fs.rmSync(runtime, { recursive: true, force: true }));

function baton(args: string[], env: Record<string, string> = {}) {
  return execa(process.execPath, [...NODE_FLAGS, BIN, ...args], { reject: false, env: { BATON_RUNTIME_DIR: runtime, ...env } });
}

const COMMANDS = ['run', 'check', 'reload', 'status', 'stop', 'upgrade', 'stats', 'memory', 'heap-snapshot', 'heap-profile', 'version'];

describe('baton COMMAND --help', () => {
  for (const command of [...COMMANDS, 'dev']) {
    it(`baton ${command} --help prints its usage and exits 0, starting and changing nothing`, async () => {
      const r = await baton([command, '--help']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^\\s+baton ${command}\\b`, 'm'));
      // Only this command's lines, not the whole usage.
      const others = COMMANDS.filter((c) => c !== command && !(command === 'memory' && c.startsWith('heap')));
      for (const other of others) expect(r.stdout).not.toMatch(new RegExp(`^\\s+baton ${other}\\b`, 'm'));
    });
  }

  it('run --help lists the options of run; -h works too; a --help after -- belongs to the child', async () => {
    const r = await baton(['run', '-h']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Options of run');
    expect(r.stdout).toContain('--ready-timeout DUR');
    expect(wantsHelp(['--', 'node', 'app.js', '--help'])).toBe(false);
    expect(wantsHelp(['--name', 'x', '--help'])).toBe(true);
    expect(commandUsage('Usage:\n  baton a x\n                                 more\n  baton b\n', 'a')).toBe('Usage:\n  baton a x\n                                 more\n');
  });
});

describe('an unknown command', () => {
  it.each([
    ['relaod', 'reload'],
    ['stauts', 'status'],
    ['stat', 'stats'],
    ['upgrad', 'upgrade'],
    ['verison', 'version'],
  ])('baton %s suggests baton %s and exits 2', async (typed, near) => {
    expect(nearestCommand(typed, COMMANDS)).toBe(near);
    const r = await baton([typed]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`baton: unknown command '${typed}'; did you mean 'baton ${near}'?`);
  });

  it('suggests nothing when nothing is close', async () => {
    expect(nearestCommand('frobnicate', COMMANDS)).toBeUndefined();
    const r = await baton(['frobnicate']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("baton: unknown command 'frobnicate'");
  });
});

describe('against a running instance', () => {
  it('baton memory 9 for a generation that does not exist exits 1 and says which exist; a second instance names the first pid', async () => {
    const first = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await first.active(1);
    const socket = ['--control-socket', first.socketPath];
    for (const extra of [[], ['--json']]) {
      const r = await baton(['memory', '9', ...socket, ...extra]);
      expect(r.exitCode, `memory 9 ${extra.join(' ')}: ${r.stdout}`).toBe(1);
      expect(r.stderr).toMatch(/^baton: no generation 9\b/);
    }
    const ok = await baton(['memory', '1', ...socket, '--json']);
    expect(ok.exitCode, ok.stderr).toBe(0);

    const second = await baton(['run', ...socket, '--', ...fixture('http-app.ts')]);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(`already running (pid ${first.proc.pid})`);
    expect(second.stderr.split('\n').filter((l) => l.trim() !== '')).toHaveLength(1);
    expect((await first.status()).active).toBe(1);
  });
});
