/**
 * The README's first commands, run as written on a fresh copy of the checkout with the machine's
 * own PATH (on this project's machines the system node is 20): the quick start's `npm ci && npm
 * start` (its second line, `npm ci && npm test`, is this suite), and then, "in another terminal",
 * every line of "Try a hot restart". The bundled default listens on 127.0.0.1:8080 and cannot be
 * moved without changing the command, so the test needs that port free (it skips, saying so,
 * when something else holds it) and stops what it started by the README's own `stop`, or by
 * killing the process group it created.
 */
import { execa, type ResultPromise } from 'execa';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, waitForGone } from '../helpers/baton.ts';
import { get } from '../helpers/ports.ts';

/** The shell lines of the first ```sh block after `heading` (or of the first block at all). */
function commandBlock(markdown: string, heading?: string): { command: string; comment: string }[] {
  const from = heading === undefined ? 0 : markdown.indexOf(`\n${heading}\n`);
  if (from === -1) throw new Error(`README has no heading ${heading}`);
  const block = /```sh\n([\s\S]*?)```/.exec(markdown.slice(from));
  if (!block) throw new Error(`no sh block after ${heading ?? 'the top'}`);
  return block[1]!
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const hash = l.indexOf(' #');
      return hash === -1 ? { command: l.trim(), comment: '' } : { command: l.slice(0, hash).trim(), comment: l.slice(hash + 2).trim() };
    });
}

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-readme-'));
const checkout = path.join(tmp, 'baton');
let start: ResultPromise | undefined;
const pids: number[] = [];

/** The machine's PATH: without the Node >= 22 that scripts/with-node.sh put in front for this run. */
const systemPath = (process.env.PATH ?? '').split(':').filter((d) => !d.includes(`${path.sep}.node${path.sep}`)).join(':');

function env(): Record<string, string> {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(npm_|BATON_|NODE_OPTIONS$|INIT_CWD$)/.test(k)) e[k] = v;
  // Its own control-socket directory: the default one may be another supervisor's.
  return { ...e, PATH: systemPath, BATON_RUNTIME_DIR: path.join(tmp, 'run') };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

afterAll(async () => {
  if (start?.pid !== undefined) {
    try {
      process.kill(-start.pid, 'SIGKILL'); // npm, sh and the supervisor; generations die with it
    } catch {
      // already gone
    }
  }
  await waitForGone(pids, 5_000);
  // A whole checkout with node_modules: slow to remove on a busy machine.
  await fs.promises.rm(tmp, { recursive: true, force: true });
}, 180_000);

describe('README', () => {
  const quick = commandBlock(readme);
  const hot = commandBlock(readme, '## Try a hot restart');

  it('names the commands this test runs', () => {
    expect(quick.map((l) => l.command)).toEqual(['npm ci && npm start', 'npm ci && npm test']);
    expect(hot.length).toBeGreaterThanOrEqual(4);
    expect(hot.every((l) => !/[<>]/.test(l.command)), 'no placeholders: every line runs as written').toBe(true);
  });

  it('quick start, then "Try a hot restart", as written, with the system node on PATH', async (ctx) => {
    if (!(await portFree(8080))) ctx.skip('127.0.0.1:8080 is in use: the bundled default cannot start');
    const node = execFileSync('node', ['-v'], { env: env(), encoding: 'utf8' }).trim();
    // A fresh checkout: the tracked files as they are now, no node_modules, build, dist or .node.
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const f of files) {
      // Regular files only: not one deleted in the work tree, nor the .node symlink a worktree may have.
      if (!fs.lstatSync(path.join(ROOT, f), { throwIfNoEntry: false })?.isFile()) continue;
      fs.mkdirSync(path.dirname(path.join(checkout, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(checkout, f));
      fs.chmodSync(path.join(checkout, f), fs.statSync(path.join(ROOT, f)).mode);
    }

    start = execa('sh', ['-c', quick[0]!.command], { cwd: checkout, env: env(), extendEnv: false, detached: true, reject: false, all: true, buffer: false });
    let ended = false;
    const output: string[] = [];
    start.all?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    void start.then(() => (ended = true));
    const startOutput = () => output.join('');
    const deadline = Date.now() + 400_000;
    let first = '';
    while (first === '') {
      if (Date.now() > deadline || ended) {
        throw new Error(`npm start never served on 8080 (system node ${node}):\n${startOutput() ?? ''}`);
      }
      first = await get({ port: 8080 })
        .then((r) => r.body)
        .catch(() => '');
      if (first === '') await new Promise((r) => setTimeout(r, 250));
    }
    expect(first).toMatch(/^hello from generation 1 \(pid (\d+)\)\n$/);

    for (const { command, comment } of hot) {
      const r = await execa('sh', ['-c', command], { cwd: checkout, env: env(), extendEnv: false, reject: false, timeout: 60_000 });
      expect(r.exitCode, `${command} (system node ${node}):\n${r.stdout}\n${r.stderr}`).toBe(0);
      const output = r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('> ')).join('\n');
      // Where the comment shows output ("hello from …", "reloaded: …"), the output begins with it.
      const shown = /^(hello from|reloaded:)[^(…]*/.exec(comment)?.[0].trim();
      if (shown !== undefined) expect(output.startsWith(shown), `${command}: ${output}`).toBe(true);
      if (command.includes('status')) {
        for (const m of output.matchAll(/\bpid (\d+)/g)) pids.push(Number(m[1]));
      }
    }
    const stopped = await start;
    expect(stopped.exitCode, startOutput()).toBe(0);
    expect(await waitForGone(pids, 10_000)).toEqual([]);
    expect(await portFree(8080)).toBe(true);
  }, 600_000);
});
