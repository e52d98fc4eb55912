/**
 * Prints the README's metrics reference table (name, type, labels, help) from the families Baton
 * documents in shared/stats/help.ts: `sh scripts/with-node.sh node scripts/metrics-table.ts`.
 * test/shared/stats/exposition-readme.test.ts checks the README holds exactly this output.
 */
import { fileURLToPath } from 'node:url';
import { BATON_FAMILIES } from '../shared/stats/index.ts';

/** The markdown table, one row per family, ending in a newline. */
export function metricsTable(): string {
  const rows = BATON_FAMILIES.map((f) => `| \`${f.family}\` | ${f.type} | ${f.labels.length > 0 ? f.labels.map((l) => `\`${l}\``).join(', ') : '—'} | ${f.help.replaceAll('|', '\\|')} |`);
  return ['| name | type | labels | help |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(metricsTable());
