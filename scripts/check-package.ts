/**
 * `npm run check:package`: packs the package as a publish would (prepack builds it) and runs
 * publint and arethetypeswrong on the tarball. test/package/consumer.test.ts runs the same checks.
 * attw's esm-only profile: the package is ES modules; CommonJS reaches it through require(esm)
 * (Node >= 22.12), which attw's node16-from-CommonJS view predates, and node10 knows no `exports`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-check-'));
try {
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })) as { filename: string }[];
  const tarball = path.join(tmp, packed[0]!.filename);
  execFileSync(process.execPath, [path.join(root, 'node_modules/publint/src/cli.js'), 'run', tarball, '--strict'], { stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(root, 'node_modules/@arethetypeswrong/cli/dist/index.js'), tarball, '--profile', 'esm-only'], { stdio: 'inherit' });
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
