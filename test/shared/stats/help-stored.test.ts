// Help text stored with a stat in the segment: read by every other mapping, replaced by a later
// registration, one copy per family, and harmless when another process writes garbage there.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { StatsFront } from '../../../child/stats/stats-api.ts';
import { computeLayout, createSegment, openSegment, segmentPath, toPrometheus } from '../../../shared/stats/index.ts';
import { E, ENTRY_BYTES } from '../../../shared/stats/layout.ts';
import { MAX_HELP_BYTES } from '../../../shared/stats/stat-help.ts';
import { instanceName, tempDir } from './helpers.ts';

const LAYOUT = computeLayout();
const hasPromtool = spawnSync('/usr/bin/promtool', ['--version']).status === 0;

function helpLines(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('# HELP '));
}

/** parse-prometheus-text-format (a devDependency, CommonJS without types). */
async function parser(): Promise<(text: string) => { name: string; type: string }[]> {
  const name = 'parse-prometheus-text-format';
  const module = (await import(name)) as { default?: { default?: unknown } };
  return (module.default?.default ?? module.default) as (text: string) => { name: string; type: string }[];
}

function occurrences(haystack: Buffer, needle: string): number {
  let n = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) n++;
  return n;
}

describe('help stored with a stat', () => {
  it('is read by another mapping, replaced by a later registration, and stored once for a family', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    const gen1 = openSegment({ dir, instance, writer: 1 });
    gen1.counter('app.requests', undefined, 'Requests served').inc();
    for (let i = 0; i < 50; i++) gen1.counter('app.hits', { route: `/r${i}` }, 'Hits by route.').inc();
    gen1.histogram('app.seconds', [0.1, 1], undefined, 'Time to answer.').record(0.5);
    const text = toPrometheus(owner.snapshot());
    expect(helpLines(text)).toEqual(
      expect.arrayContaining(['# HELP app_requests_total Requests served', '# HELP app_hits_total Hits by route.', '# HELP app_seconds Time to answer.']),
    );
    expect(occurrences(fs.readFileSync(segmentPath(dir, instance, 0)), 'Hits by route.')).toBe(1);
    // The next release registers the same stat with other words: they replace the old ones.
    const gen2 = openSegment({ dir, instance, writer: 2 });
    gen2.counter('app.requests', undefined, 'Requests answered, any route.').inc();
    expect(helpLines(toPrometheus(owner.snapshot(/^app\.requests$/)))).toEqual(['# HELP app_requests_total Requests answered, any route.']);
    expect(owner.sample('app.requests')).toMatchObject({ value: 2, help: 'Requests answered, any route.' });
    // Baton's own families keep Baton's help whatever a generation stores with them.
    gen2.counter('baton.crashes', undefined, 'Lies.');
    expect(helpLines(toPrometheus(owner.snapshot(/^baton\.crashes$/)))).toEqual(['# HELP baton_crashes_total Generations that exited without being asked to.']);
    owner.destroy();
  });

  it('the SDK refuses help that is too long or not one line, naming the stat', () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    const front = new StatsFront(() => owner);
    expect(() => front.counter('app.long', { help: 'x'.repeat(MAX_HELP_BYTES + 1) })).toThrow(/stat "app\.long": help is 512 bytes of UTF-8; at most 511/);
    expect(() => front.counter('app.lines', { help: 'one\ntwo' })).toThrow(/stat "app\.lines": help must be one line without control characters/);
    expect(() => front.counter('app.empty', { help: ' ' })).toThrow(/stat "app\.empty": help must be a non-empty string/);
    front.counter('app.ok', { help: 'é'.repeat(255) }); // 510 bytes
    expect(owner.sample('app.ok')).toMatchObject({ help: 'é'.repeat(255) });
    owner.destroy();
  });

  it('written over by another process: a pointer out of the arena is ignored, injected lines and control characters are neutralised', async () => {
    const dir = tempDir();
    const instance = instanceName();
    const owner = createSegment({ dir, instance });
    const gen = openSegment({ dir, instance, writer: 1 });
    gen.counter('app.first', undefined, 'Fine.').inc(); // entry 1 (entry 0 is baton.stats.overflow)
    gen.counter('app.second', undefined, 'Fine too.').inc(); // entry 2
    const file = segmentPath(dir, instance, 0);
    const fd = fs.openSync(file, 'r+');
    const word = (entry: number) => LAYOUT.tableOffset + entry * ENTRY_BYTES + 4 * E.help;
    // Entry 1: help pointing at hostile bytes written near the end of the arena.
    const hostile = Buffer.from('evil\n# TYPE app_first_total gauge\napp_first_total 1e9\r\u0000\u001b[31m \\ end');
    const at = LAYOUT.arenaBytes - 512;
    fs.writeSync(fd, hostile, 0, hostile.length, LAYOUT.arenaOffset + at);
    const packed = Buffer.alloc(4);
    packed.writeUInt32LE((((at / 8) << 9) | hostile.length) >>> 0);
    fs.writeSync(fd, packed, 0, 4, word(1));
    // Entry 2: a pointer past the end of the arena.
    packed.writeUInt32LE((((LAYOUT.arenaBytes / 8 - 1) << 9) | 100) >>> 0);
    fs.writeSync(fd, packed, 0, 4, word(2));
    fs.closeSync(fd);

    const text = toPrometheus(openSegment({ dir, instance }).snapshot(/^app\./));
    expect(text.split('\n').filter((l) => l !== '')).toEqual([
      '# HELP app_first_total evil # TYPE app_first_total gauge app_first_total 1e9   [31m \\\\ end',
      '# TYPE app_first_total counter',
      'app_first_total 1',
      '# HELP app_second_total Counter app.second (no help text registered).',
      '# TYPE app_second_total counter',
      'app_second_total 1',
    ]);
    expect((await parser())(text).map((f) => [f.name, f.type])).toEqual([
      ['app_first_total', 'COUNTER'],
      ['app_second_total', 'COUNTER'],
    ]);
    if (hasPromtool) expect(execFileSync('/usr/bin/promtool', ['check', 'metrics'], { input: text }).toString()).toBe('');
    owner.destroy();
  });
});
