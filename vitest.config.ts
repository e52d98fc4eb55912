import { defineConfig } from 'vitest/config';

const major = process.versions.node.split('.')[0];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    // Real processes under real load on a 2-core machine: two files at a time keeps timings honest.
    maxWorkers: 2,
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    // The JSON report is what .ci/run counts its closing "N passed, N failed" line from.
    reporters: ['default', 'json'],
    outputFile: { json: `test-results/node-${major}.json` },
  },
});
