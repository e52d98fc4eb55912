// The README's metrics reference table is the output of scripts/metrics-table.ts, which reads
// the families Baton documents in code (shared/stats/help.ts): a family added there and not to
// the README fails here.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { metricsTable } from '../../../scripts/metrics-table.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('README metrics table', () => {
  it('matches scripts/metrics-table.ts (regenerate: sh scripts/with-node.sh node scripts/metrics-table.ts)', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const found = /<!-- metrics-table:start -->\n([\s\S]*?)<!-- metrics-table:end -->/.exec(readme);
    expect(found, 'README.md has no <!-- metrics-table:start --> … <!-- metrics-table:end --> block').not.toBeNull();
    expect(found![1]).toBe(metricsTable());
  });
});
