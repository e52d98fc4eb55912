/**
 * What the schema made of a configuration file, kept for the next generation (issue #19). Parsing
 * the YAML and checking it with valibot is half of a proxy generation's start-up CPU (the two
 * libraries alone are some 90 ms to load); a reload mostly starts a generation on the very file
 * the previous one checked. So the schema's output is stored, keyed by a digest of the file's
 * text, of the schema's own code (every module of the proxy) and of the valibot and yaml versions:
 * any change to one of them is a miss, and a miss checks the file in full. Only a file that
 * passed is stored, and only what survives JSON unchanged. Everything past the schema (listener
 * names, endpoints, token and certificate files) is checked on every start all the same.
 *
 * The entries live in the directory Baton gives its generations for Node's compile cache
 * (NODE_COMPILE_CACHE, in its private runtime directory), and are used only where that directory
 * is this user's and closed to others, as Node's own cache there is trusted. Without it (the
 * proxy started alone), nothing is cached.
 */
// Built-ins through getBuiltinModule: an ES import of one builds a facade of its exports, CPU a
// generation's start would pay for nothing.
const { isDeepStrictEqual } = process.getBuiltinModule('node:util');
const { fileURLToPath } = process.getBuiltinModule('node:url');
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');
const crypto = process.getBuiltinModule('node:crypto');

/** The schema's output for a file, and the file's `app:` as written (for /config_dump). */
export interface Validated {
  data: unknown;
  rawApp: unknown;
}

/** Bumped when the entry's shape changes. */
const FORMAT = 1;

/** The cache directory, when there is a trustworthy one. */
function directory(): string | undefined {
  const base = process.env.NODE_COMPILE_CACHE;
  if (!base) return undefined;
  try {
    const stat = fs.lstatSync(base);
    const uid = process.getuid?.() ?? -1;
    if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o022) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return path.join(base, 'baton-proxy-config');
}

let schemaDigest: string | undefined;

/** What the schema's behaviour depends on: the proxy's modules (all its folders), shared/'s top level, valibot's and yaml's versions. */
function schemaIdentity(): string {
  if (schemaDigest !== undefined) return schemaDigest;
  const h = crypto.createHash('sha256').update(`format ${FORMAT}\0`);
  const proxyRoot = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
  const hashDir = (dir: string, recursive: boolean): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (recursive) hashDir(file, true);
      } else if (/\.(ts|js)$/.test(entry.name)) {
        h.update(path.relative(proxyRoot, file)).update('\0').update(fs.readFileSync(file)).update('\0');
      }
    }
  };
  hashDir(proxyRoot, true);
  hashDir(path.join(proxyRoot, '..', 'shared'), false);
  const load = process.getBuiltinModule('node:module').createRequire(import.meta.url);
  for (const pkg of ['valibot', 'yaml']) h.update(`${pkg} ${versionOf(pkg, load.resolve(pkg))}\0`);
  schemaDigest = h.digest('hex');
  return schemaDigest;
}

/** The version in the package.json above `entry` that names `pkg` (valibot's `exports` do not offer its package.json). */
function versionOf(pkg: string, entry: string): string {
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (manifest.name === pkg && manifest.version !== undefined) return manifest.version;
  }
  throw new Error(`no package.json of ${pkg} above ${entry}`);
}

function entryFile(dir: string, text: string): string {
  return path.join(dir, `${crypto.createHash('sha256').update(schemaIdentity()).update('\0').update(text).digest('hex')}.json`);
}

/** The stored result for this file text, or undefined (no cache, a miss, or an unreadable entry). */
export function cached(text: string): Validated | undefined {
  const dir = directory();
  if (!dir) return undefined;
  try {
    const entry = JSON.parse(fs.readFileSync(entryFile(dir, text), 'utf8')) as Validated & { format?: number };
    return entry.format === FORMAT ? { data: entry.data, rawApp: entry.rawApp } : undefined;
  } catch {
    return undefined;
  }
}

/** Stores a result that passed the schema, when the cache is there and the result is plain JSON; never throws. */
export function store(text: string, validated: Validated): void {
  const dir = directory();
  if (!dir) return;
  try {
    const json = JSON.stringify({ format: FORMAT, ...validated });
    // NaN, Infinity, undefined in an array, a Date: JSON would change them, so such a result is not kept.
    if (!isDeepStrictEqual(JSON.parse(json), { format: FORMAT, ...validated })) return;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = entryFile(dir, text);
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, json, { mode: 0o600 });
    fs.renameSync(temp, file);
  } catch {
    // no cache this time: the next generation checks the file in full
  }
}
