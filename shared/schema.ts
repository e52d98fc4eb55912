/**
 * What Baton's schemas (the supervisor's config and control API, the proxy's config) share on top
 * of valibot: objects that refuse every unknown key, one wording for valibot's own messages, and
 * the issue list flattened to `path: message` problems.
 *
 * Valibot rather than zod: the supervisor is a long-lived, mostly idle process and zod's classic
 * API cost it 6.6–7.9 MiB of RSS over an idle Node (its 94 modules and the closures of its schema
 * objects), valibot's 2.1 MiB, for the same checks (README, "Start-up and the supervisor's memory").
 */
import * as v from 'valibot';

/** One thing wrong with a value: the key path to it, and what. */
export interface SchemaProblem {
  path: PropertyKey[];
  message: string;
  /** The key itself is the problem (not taken there), not its value. */
  key?: true;
}

/**
 * `v.object(entries)` that refuses every key it does not take, each as its own issue (valibot's
 * `strictObject` stops at the first), beside the problems of the keys it does take.
 */
export function strictObject<const E extends v.ObjectEntries>(entries: E): v.ObjectSchema<E, undefined> {
  const base = v.object(entries);
  const schema: v.ObjectSchema<E, undefined> = {
    ...base,
    '~run'(dataset, config) {
      const input: unknown = dataset.value;
      // valibot's object takes a list for a mapping (and then misses every key).
      if (Array.isArray(input)) return fail(dataset as unknown as ReturnType<typeof base['~run']>, { input, expected: 'Object', received: 'Array', message: 'expected a mapping, got a list' });
      const result = base['~run'](dataset, config);
      if (typeof input !== 'object' || input === null) return result;
      for (const key of Object.keys(input)) {
        if (Object.hasOwn(entries, key)) continue;
        const value = (input as Record<string, unknown>)[key];
        fail(result, { input: key, expected: 'never', received: JSON.stringify(key), message: 'unknown key', path: [{ type: 'object', origin: 'key', input, key, value }] });
      }
      return result;
    },
  };
  return schema;
}

/** Adds an object issue to `dataset` and marks it untyped. */
function fail<D extends v.OutputDataset<unknown, v.BaseIssue<unknown>>>(dataset: D, issue: Record<string, unknown>): D {
  const d = dataset as unknown as { typed: boolean; issues?: unknown[] };
  (d.issues ??= []).push({ kind: 'schema', type: 'object', ...issue });
  d.typed = false;
  return dataset;
}

/** Valibot's message for an issue no schema words itself: `expected number, got "x"` (what came cut at 80 characters). */
export function defaultMessage(issue: v.BaseIssue<unknown>): string {
  // A key an object needs and did not get: valibot expects its name and received undefined.
  if (issue.type === 'object' && issue.input === undefined && issue.expected?.startsWith('"')) return 'required';
  const got = words(issue.received.length > 80 ? `${issue.received.slice(0, 77)}...` : issue.received);
  return issue.expected === null ? `unexpected ${got}` : `expected ${words(issue.expected)}, got ${got}`;
}

/** Valibot names a type by its constructor (`Array`, `Object`); a config file has lists and mappings. */
function words(text: string): string {
  return text.replace(/\bArray\b/g, 'a list').replace(/\bObject\b/g, 'a mapping');
}

/** The problems of a failed parse, each with its key path; an unknown key is marked `key`. */
export function problemsOf(issues: readonly v.BaseIssue<unknown>[]): SchemaProblem[] {
  return issues.map((issue) => {
    const path = (issue.path ?? []).map((item) => (item as { key: PropertyKey }).key);
    const unknownKey = issue.message === 'unknown key' && issue.expected === 'never';
    return unknownKey ? { path, message: 'unknown key', key: true as const } : { path, message: issue.message };
  });
}

/** `schema` parsed with Baton's wording for valibot's own messages; every issue, not the first. */
export function safeParse<S extends v.GenericSchema>(schema: S, input: unknown): v.SafeParseResult<S> {
  return v.safeParse(schema, input, { message: defaultMessage });
}

/**
 * A value turned into something else by `parse`, whose thrown message (e.g. "invalid duration
 * 'soon': …") becomes the issue's.
 */
export function parsedBy<I, T>(parse: (value: I) => T): v.RawTransformAction<I, T> {
  return v.rawTransform(({ dataset, addIssue, NEVER }) => {
    try {
      return parse(dataset.value);
    } catch (err) {
      addIssue({ message: (err as Error).message });
      return NEVER;
    }
  });
}
