import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { parsedBy, problemsOf, safeParse, strictObject } from '../../shared/schema.ts';

const problems = (schema: v.GenericSchema, input: unknown) => {
  const r = safeParse(schema, input);
  return r.success ? [] : problemsOf(r.issues);
};

describe('strictObject', () => {
  const schema = strictObject({ a: v.number(), inner: v.optional(strictObject({ b: v.string() })) });

  it('reports every unknown key, nested ones with their path, beside the problems of known keys', () => {
    expect(problems(schema, { a: 'x', foo: 1, bar: 2, inner: { b: 'ok', baz: true } })).toEqual([
      { path: ['a'], message: 'expected number, got "x"' },
      { path: ['inner', 'baz'], message: 'unknown key', key: true },
      { path: ['foo'], message: 'unknown key', key: true },
      { path: ['bar'], message: 'unknown key', key: true },
    ]);
  });

  it('refuses a "__proto__" key JSON.parse made an own property, and passes a valid object through', () => {
    expect(problems(schema, JSON.parse('{"a": 1, "__proto__": {}}'))).toEqual([{ path: ['__proto__'], message: 'unknown key', key: true }]);
    expect(safeParse(schema, { a: 1 })).toMatchObject({ success: true, output: { a: 1 } });
  });

  it('a missing key is "required"', () => {
    expect(problems(schema, {})).toEqual([{ path: ['a'], message: 'required' }]);
  });

  it('a value that is not a mapping is one problem at the top', () => {
    expect(problems(schema, 'str')).toEqual([{ path: [], message: 'expected a mapping, got "str"' }]);
    expect(problems(schema, [1])).toEqual([{ path: [], message: 'expected a mapping, got a list' }]);
  });
});

describe('messages', () => {
  it('names lists and mappings, and cuts a long value at 80 characters', () => {
    expect(problems(v.array(v.number()), 'a')).toEqual([{ path: [], message: 'expected a list, got "a"' }]);
    const [long] = problems(v.number(), 'x'.repeat(500));
    expect(long!.message).toBe(`expected number, got "${'x'.repeat(76)}...`);
    expect(long!.message.length).toBeLessThan(120);
  });

  it("keeps a schema's own message", () => {
    expect(problems(v.pipe(v.number(), v.minValue(1, 'at least one')), 0)).toEqual([{ path: [], message: 'at least one' }]);
    expect(problems(v.pipe(v.number(), v.minValue(1)), 0)).toEqual([{ path: [], message: 'expected >=1, got 0' }]);
  });
});

describe('parsedBy', () => {
  const schema = v.pipe(
    v.string(),
    parsedBy((s: string) => {
      if (!/^\d+$/.test(s)) throw new Error(`invalid count '${s}'`);
      return Number(s);
    }),
  );

  it("turns the value into the parser's result, or its thrown message into the issue", () => {
    expect(safeParse(schema, '12')).toMatchObject({ success: true, output: 12 });
    expect(problems(schema, 'twelve')).toEqual([{ path: [], message: "invalid count 'twelve'" }]);
  });
});
