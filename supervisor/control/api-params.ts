/**
 * A control request's parameters: a POST's JSON body over its query string, each field checked
 * against the schema of what that endpoint takes; anything else is a BadRequest (4xx) before any
 * handler runs.
 */
import * as v from 'valibot';
import { BatonError } from '../../shared/errors.ts';
import { problemsOf, safeParse, strictObject } from '../../shared/schema.ts';
import { describeJsonError } from './json-position.ts';

/** What a POST may say, in its JSON body or its query string (the body wins). */
const FIELDS = {
  cold: v.boolean(),
  generation: v.pipe(v.number(), v.integer(), v.minValue(1)),
  seconds: v.number(),
  retire: v.boolean(),
  'wait-canary': v.boolean(),
  compare: v.boolean(),
};
export type Params = { [K in keyof typeof FIELDS]?: v.InferOutput<(typeof FIELDS)[K]> };
/** A parameter some endpoint takes. */
export type Field = keyof typeof FIELDS;

/** A request refused before any handler runs; `status` is the 4xx it is answered with. */
export class BadRequest extends BatonError {
  readonly status: number;

  constructor(message: string, status = 400) {
    super('ERR_BAD_REQUEST', message);
    this.status = status;
  }
}

export function noBody(endpoint: string, body: string): Params {
  if (body.trim() !== '') throw new BadRequest(`${endpoint} takes no request body (got ${Buffer.byteLength(body)} bytes)`);
  return {};
}

/** A POST's parameters: its query string under its JSON body, checked against the fields it takes. */
export function paramsOf(endpoint: string, fields: Field[], query: URLSearchParams, body: string, contentType?: string): Params {
  let merged: Record<string, unknown> = {};
  // Every query key goes to the schema: a misspelt one (`?cld=1`) is refused, never silently ignored.
  for (const [name, text] of query) {
    if (text === '' && (fields as string[]).includes(name)) continue;
    const value = (fields as string[]).includes(name) ? fromQuery(name as Field, text) : text;
    // Defined, not assigned: `?__proto__=x` must stay a key the schema refuses.
    Object.defineProperty(merged, name, { value, enumerable: true, writable: true, configurable: true });
  }
  if (body.trim() !== '') {
    const type = contentType?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new BadRequest(`${endpoint} takes a JSON body: expected content-type application/json, got ${contentType ?? 'none'}`, 415);
    }
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch (err) {
      throw new BadRequest(`${endpoint}: the request body is not valid JSON: ${describeJsonError(body, err as Error)}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new BadRequest(`${endpoint}: expected a JSON object as the request body, got ${Array.isArray(json) ? 'an array' : JSON.stringify(json)}`);
    }
    // Spread, not assign: a "__proto__" key must stay a field the schema refuses.
    merged = { ...merged, ...json };
  }
  const schema = strictObject(Object.fromEntries(fields.map((f) => [f, v.optional(FIELDS[f])])));
  const result = safeParse(schema, merged);
  if (result.success) return result.output as Params;
  const takes = fields.length > 0 ? `takes ${fields.join(', ')}` : 'takes no parameters';
  const problems = problemsOf(result.issues).map((p) => (p.key ? `unknown field "${String(p.path.at(-1))}"` : `field "${p.path.join('.')}": ${p.message}`));
  throw new BadRequest(`${endpoint} ${takes}: ${problems.join('; ')}`);
}

/** A query-string value as the JSON value it stands for; anything unrecognisable is left a string for the schema to refuse. */
function fromQuery(name: Field, text: string): unknown {
  if (name === 'cold' || name === 'retire' || name === 'compare' || name === 'wait-canary') return text === '1' || text === 'true' ? true : text === '0' || text === 'false' ? false : text;
  return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
}
