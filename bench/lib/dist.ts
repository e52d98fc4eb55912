// For benches that time what an installed package runs: the compiled dist/ (BATON_DIST=1).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './baton.ts';

/** Throws unless dist/ is built and newer than every source file: a stale dist/ would time other code. */
export function requireFreshDist(option: string): void {
  const bundle = path.join(ROOT, 'dist/supervisor/bundle/cli.js');
  if (!fs.existsSync(bundle)) throw new Error(`${option} needs dist/: run npm run build first`);
  const built = fs.statSync(bundle).mtimeMs;
  for (const top of ['supervisor', 'child', 'shared', 'proxy']) {
    const newer = fs.readdirSync(path.join(ROOT, top), { recursive: true, encoding: 'utf8' }).find((f) => f.endsWith('.ts') && fs.statSync(path.join(ROOT, top, f)).mtimeMs > built);
    if (newer !== undefined) throw new Error(`${option}: ${top}/${newer} changed after dist/ was built: run npm run build again`);
  }
}

/**
 * Writes `app` (a repository file in TypeScript without type annotations) into `dir` as the plain
 * JavaScript a user would have, its import of the SDK's sources pointed at dist/child/index.js, as
 * `baton-supervisor/child` resolves in an installed package; returns its path.
 */
export function asInstalledApp(app: string, dir: string): string {
  const text = fs.readFileSync(path.join(ROOT, app), 'utf8');
  const sdk = JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/child/index.js')).href);
  const out = path.join(dir, path.basename(app).replace(/\.ts$/, '.mjs'));
  fs.writeFileSync(out, text.replace(/(['"])(?:\.\.\/)+child\/index\.ts\1/g, sdk));
  return out;
}
