/**
 * Where Baton's package is: the directory of its package.json, whether this module runs from the
 * TypeScript sources of a checkout (shared/) or from the compiled dist/shared/ of an install.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatonError } from './errors.ts';

/** The package's npm name. */
export const PACKAGE_NAME = 'baton-supervisor';

let found: { root: string; version: string } | undefined;

function locate(): { root: string; version: string } {
  if (found) return found;
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === PACKAGE_NAME) return (found = { root: dir, version: String(pkg.version) });
    }
    if (path.dirname(dir) === dir) {
      throw new BatonError('ERR_PACKAGE', `no package.json of ${PACKAGE_NAME} above ${start}`);
    }
  }
}

/** Absolute directory of Baton's package.json. */
export function packageRoot(): string {
  return locate().root;
}

/** Baton's version, from its package.json. */
export function packageVersion(): string {
  return locate().version;
}
