// What a generation loads to write into the segment (issue #19): openSegment without the owner's
// modules (owner-stats, the claim of segment 0, the size checks) nor reading (snapshot) until it
// reads. A real process maps the segment a real owner created; the owner reads what it wrote.
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createSegment } from '../../../shared/stats/index.ts';
import { NODE_FLAGS, ROOT } from '../../helpers/baton.ts';
import { instanceName, tempDir } from './helpers.ts';

const RECORD = path.join(ROOT, 'test/fixtures/record-modules.mjs');
const OWNER_ONLY = /^shared\/stats\/(owner-stats|owner-claim|shrink)\.ts$/;

/** Runs `body` (ES module code with `stats`, the writer-1 mapping) in a fresh process; returns the stats modules it loaded. */
async function asWriter(dir: string, instance: string, body: string): Promise<{ modules: string[]; stdout: string }> {
  const record = path.join(dir, 'modules.json');
  const url = pathToFileURL(path.join(ROOT, 'shared/stats/stats.ts')).href;
  const code = `import { openSegment } from ${JSON.stringify(url)};\nconst stats = openSegment(${JSON.stringify({ dir, instance, writer: 1 })});\n${body}`;
  const { stdout } = await execa(process.execPath, [...NODE_FLAGS, '--import', RECORD, '--input-type=module', '-e', code], { env: { RECORD_MODULES: record } });
  const { loaded } = JSON.parse(fs.readFileSync(record, 'utf8')) as { loaded: string[] };
  const modules = loaded.filter((u) => u.startsWith('file:')).map((u) => path.relative(ROOT, new URL(u).pathname)).filter((m) => m.startsWith('shared/stats/'));
  return { modules, stdout };
}

describe('a writer process', () => {
  it('registers and sets gauges without the owner modules or the reading module, and the owner reads them', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    try {
      const { modules } = await asWriter(dir, instance, "stats.gauge('test.memory.rss', { writer: '1' }).set(42);");
      expect(modules).toContain('shared/stats/segment.ts');
      expect(modules.filter((m) => OWNER_ONLY.test(m) || m === 'shared/stats/snapshot.ts')).toEqual([]);
      expect(owner.sample('test.memory.rss', { writer: '1' })).toMatchObject({ kind: 'gauge', value: 42 });
    } finally {
      owner.destroy();
    }
  });

  it('loads reading when it first reads, and reads what the owner wrote', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    try {
      owner.counter('test.requests').inc(3);
      const { modules, stdout } = await asWriter(dir, instance, "console.log(JSON.stringify(stats.sample('test.requests')));");
      expect(JSON.parse(stdout)).toMatchObject({ kind: 'counter', value: 3 });
      expect(modules).toContain('shared/stats/snapshot.ts');
      expect(modules.filter((m) => OWNER_ONLY.test(m))).toEqual([]);
    } finally {
      owner.destroy();
    }
  });
});
