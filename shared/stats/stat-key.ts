/** Stat names and labels: checked, and encoded as the canonical key stored in the arena. */
import { invalid, type StatKind } from './layout.ts';

/** Label names to values. */
export type Labels = Readonly<Record<string, string>>;

const NAME = /^[a-zA-Z_][a-zA-Z0-9_.:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Most bounds a histogram may have. */
export const MAX_BOUNDS = 1024;
const EMPTY: Labels = Object.freeze({});

/** The Prometheus family a dotted name belongs to (dots become underscores). */
export function familyName(name: string): string {
  return name.replaceAll('.', '_');
}

/** Checks a name and labels; returns the canonical key and frozen, sorted labels. */
export function statKey(kind: StatKind, name: string, labels?: Record<string, string>): { key: string; labels: Labels } {
  if (typeof name !== 'string' || !NAME.test(name)) {
    invalid(`stat name ${JSON.stringify(name)} must match ${NAME.source}`);
  }
  if (labels === undefined) return { key: JSON.stringify([name, EMPTY]), labels: EMPTY };
  if (typeof labels !== 'object' || labels === null) invalid(`labels of ${name} must be an object of strings`);
  const sorted: Record<string, string> = {};
  for (const label of Object.keys(labels).sort()) {
    const value = labels[label];
    if (!LABEL_NAME.test(label) || label.startsWith('__')) {
      invalid(`label name ${JSON.stringify(label)} of ${name} must match ${LABEL_NAME.source} and not start with "__"`);
    }
    if (kind === 'histogram' && label === 'le') invalid(`histogram ${name} cannot have a label named "le"`);
    if (typeof value !== 'string') invalid(`label ${label} of ${name} must be a string, got ${typeof value}`);
    sorted[label] = value;
  }
  const frozen = Object.freeze(sorted);
  return { key: JSON.stringify([name, frozen]), labels: frozen };
}

/** Checks histogram bounds: finite, strictly increasing, 1 to MAX_BOUNDS of them. */
export function checkBounds(name: string, bounds: readonly number[]): number[] {
  if (!Array.isArray(bounds) || bounds.length === 0 || bounds.length > MAX_BOUNDS) {
    invalid(`histogram ${name} needs 1 to ${MAX_BOUNDS} bucket bounds`);
  }
  bounds.forEach((b, i) => {
    if (typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!)) {
      invalid(`histogram ${name} bounds must be finite and strictly increasing, got [${bounds.join(', ')}]`);
    }
  });
  return [...bounds];
}
