// nodemon for bench:dev: the one on PATH, else installed from npm into a temporary directory by
// the bench itself (not a project dependency), removed at exit.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onCleanup } from './procs.ts';

/** The nodemon command to run: `nodemon` when on PATH, else the bin of nodemon@3 installed now; `say` hears where it went. */
export function nodemonCommand(say: (line: string) => void): string {
  if (onPath('nodemon')) return 'nodemon';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemon-bench-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  execFileSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', 'nodemon@3'], { stdio: 'ignore', timeout: 300_000 });
  const bin = path.join(dir, 'node_modules', '.bin', 'nodemon');
  if (!fs.existsSync(bin)) throw new Error(`npm installed no ${bin}`);
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'nodemon', 'package.json'), 'utf8')).version as string;
  say(`nodemon ${version} installed into ${dir}`);
  return bin;
}

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
