import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BatonError } from '../../../shared/errors.ts';
import { handleControl, type ControlTarget } from '../../../supervisor/control/api.ts';
import { readBody } from '../../../supervisor/control/request-body.ts';
import { jsonErrorOffset } from '../../../supervisor/control/json-position.ts';
import type { StatSample } from '../../../shared/stats/index.ts';
import type { ReloadResult, StatusSnapshot } from '../../../supervisor/core/supervisor.ts';

const snapshot: StatusSnapshot = {
  instance: 'shop',
  pid: 4242,
  uptimeMs: 1000,
  active: 3,
  stopping: false,
  generations: [],
  listeners: [{ name: 'http', address: '127.0.0.1:8080', fd: 100 }],
};

const samples: StatSample[] = [
  { name: 'baton.reloads_ok', labels: {}, kind: 'counter', value: 3 },
  { name: 'http.requests', labels: { code: '200' }, kind: 'counter', value: 12 },
];

/** A control target that records what it was asked and answers reload with `outcome`. */
function target(outcome: ReloadResult | Error = { generation: 4, pid: 777, readyMs: 120 }) {
  const calls: string[] = [];
  const t: ControlTarget = {
    status: () => {
      calls.push('status');
      return snapshot;
    },
    reload: (options) => {
      calls.push(options?.cold ? 'reload cold' : 'reload');
      return outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(outcome);
    },
    stop: (reason) => {
      calls.push(`stop: ${reason}`);
      return new Promise(() => {});
    },
    stats: (filter) => {
      calls.push(`stats: ${filter ?? ''}`);
      return samples.filter((x) => !filter || filter.test(x.name));
    },
  };
  return { t, calls };
}

describe('handleControl', () => {
  it('GET /status answers the status snapshot', async () => {
    const { t, calls } = target();
    expect(await handleControl(t, 'GET', '/status')).toEqual({ status: 200, body: snapshot });
    expect(await handleControl(t, 'GET', '/status?verbose=1')).toEqual({ status: 200, body: snapshot });
    expect(calls).toEqual(['status', 'status']);
  });

  it('POST /reload answers 200 with the new generation', async () => {
    const { t, calls } = target();
    expect(await handleControl(t, 'POST', '/reload')).toEqual({ status: 200, body: { ok: true, generation: 4, pid: 777, readyMs: 120 } });
    expect(calls).toEqual(['reload']);
  });

  it('POST /reload answers 409 with the error code and message when the reload failed', async () => {
    const failure = new BatonError('ERR_RELOAD_FAILED', 'reload failed: generation 4 exited with code 1\n(generation 3 keeps serving)');
    const { t } = target(failure);
    expect(await handleControl(t, 'POST', '/reload')).toEqual({
      status: 409,
      body: { ok: false, error: { code: 'ERR_RELOAD_FAILED', message: failure.message } },
    });
  });

  it('POST /reload answers 503 while shutting down', async () => {
    const { t } = target(new BatonError('ERR_SHUTTING_DOWN', 'cannot reload: the supervisor is stopping'));
    expect(await handleControl(t, 'POST', '/reload')).toEqual({
      status: 503,
      body: { ok: false, error: { code: 'ERR_SHUTTING_DOWN', message: 'cannot reload: the supervisor is stopping' } },
    });
  });

  it('POST /stop answers 202 at once, without waiting for the stop to finish', async () => {
    const { t, calls } = target();
    expect(await handleControl(t, 'POST', '/stop')).toEqual({ status: 202, body: { ok: true } });
    expect(calls).toEqual(['stop: baton stop']);
  });

  it('an unknown path answers 404 listing the endpoints', async () => {
    const { t, calls } = target();
    expect(await handleControl(t, 'GET', '/restart')).toEqual({
      status: 404,
      body: {
        ok: false,
        error: { code: 'ERR_CONTROL', message: 'unknown endpoint GET /restart; endpoints: GET /status, GET /stats, GET /metrics, POST /reload, POST /rollback, POST /promote, POST /stop' },
      },
    });
    expect(calls).toEqual([]);
  });

  it('a wrong method answers 405 naming the right one, and does nothing', async () => {
    const { t, calls } = target();
    expect(await handleControl(t, 'GET', '/reload')).toEqual({
      status: 405,
      body: { ok: false, error: { code: 'ERR_CONTROL', message: '/reload takes POST, not GET' } },
      headers: { allow: 'POST' },
    });
    expect(await handleControl(t, 'DELETE', '/status')).toMatchObject({ status: 405, headers: { allow: 'GET' } });
    expect((await handleControl(t, 'GET', '/stop')).status).toBe(405);
    expect(calls).toEqual([]);
  });

  it('GET /stats answers { stats: [...] } as JSON, filtered by ?filter=RE', async () => {
    const { t, calls } = target();
    const all = await handleControl(t, 'GET', '/stats');
    expect(all.contentType).toBe('application/json');
    expect(JSON.parse(String(all.body))).toEqual({ stats: samples });
    const filtered = await handleControl(t, 'GET', '/stats?filter=%5Ehttp%5C.');
    expect(JSON.parse(String(filtered.body))).toEqual({ stats: [samples[1]] });
    expect(calls).toEqual(['stats: ', 'stats: /^http\\./']);
  });

  it('GET /metrics answers Prometheus text', async () => {
    const { t } = target();
    const reply = await handleControl(t, 'GET', '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(reply.body).toContain('# TYPE baton_reloads_ok_total counter\nbaton_reloads_ok_total 3\n');
    expect(reply.body).toContain('http_requests_total{code="200"} 12');
  });

  it('a filter that is not a regular expression answers 400 and reads nothing', async () => {
    const { t, calls } = target();
    const reply = await handleControl(t, 'GET', '/stats?filter=(');
    expect(reply.status).toBe(400);
    expect(JSON.stringify(reply.body)).toContain('invalid filter \\"(\\"');
    expect(calls).toEqual([]);
  });
});

const JSON_TYPE = 'application/json';

/** The error of a refused reply, with its status. */
function refusal(reply: { status: number; body: unknown }) {
  const { error } = reply.body as { error: { code: string; message: string } };
  return { status: reply.status, code: error.code, message: error.message };
}

describe('handleControl: request bodies', () => {
  it('POST /reload takes {"cold": true} in a JSON body, and ?cold=1 still works', async () => {
    const { t, calls } = target();
    expect((await handleControl(t, 'POST', '/reload', '{"cold": true}', JSON_TYPE)).status).toBe(200);
    expect((await handleControl(t, 'POST', '/reload', '{"cold": false}', 'application/json; charset=utf-8')).status).toBe(200);
    expect((await handleControl(t, 'POST', '/reload?cold=1')).status).toBe(200);
    expect((await handleControl(t, 'POST', '/reload', '{}', JSON_TYPE)).status).toBe(200);
    expect(calls).toEqual(['reload cold', 'reload', 'reload cold', 'reload']);
  });

  it('the profile endpoints take generation and seconds in a JSON body, the body over the query string', async () => {
    const profiles: unknown[] = [];
    const t: ControlTarget = {
      ...target().t,
      memoryReport: () => ({ generations: [] }) as never,
      heapProfile: (generation, seconds) => {
        profiles.push({ generation, seconds });
        return Promise.resolve({ generation: generation ?? 1, path: '/tmp/x.heapprofile' } as never);
      },
    };
    expect((await handleControl(t, 'POST', '/heap-profile', '{"generation": 2, "seconds": 5}', JSON_TYPE)).status).toBe(200);
    expect((await handleControl(t, 'POST', '/heap-profile?generation=3&seconds=1', '{"seconds": 2}', JSON_TYPE)).status).toBe(200);
    expect(profiles).toEqual([
      { generation: 2, seconds: 5 },
      { generation: 3, seconds: 2 },
    ]);
    const wrong = refusal(await handleControl(t, 'POST', '/heap-profile', '{"generation": "two"}', JSON_TYPE));
    expect(wrong).toEqual({ status: 400, code: 'ERR_BAD_REQUEST', message: 'POST /heap-profile takes generation, seconds: field "generation": expected number, got "two"' });
    expect(profiles).toHaveLength(2);
  });

  it('a body that is not JSON answers 400 with where the parse failed, and reloads nothing', async () => {
    const { t, calls } = target();
    expect(refusal(await handleControl(t, 'POST', '/reload', '{"cold": tru}', JSON_TYPE))).toEqual({
      status: 400,
      code: 'ERR_BAD_REQUEST',
      message: `POST /reload: the request body is not valid JSON: Unexpected token '}', "{"cold": tru}" is not valid JSON at position 12 (line 1 column 13)`,
    });
    expect(refusal(await handleControl(t, 'POST', '/reload', '{"cold": true', JSON_TYPE)).message).toContain('at position 13 (line 1 column 14)');
    expect(refusal(await handleControl(t, 'POST', '/reload', '[true]', JSON_TYPE))).toMatchObject({
      status: 400,
      message: 'POST /reload: expected a JSON object as the request body, got an array',
    });
    expect(calls).toEqual([]);
  });

  it('unknown fields and wrong types answer 400 naming the field', async () => {
    const { t, calls } = target();
    expect(refusal(await handleControl(t, 'POST', '/reload', '{"cold": true, "force": 1, "__proto__": {}}', JSON_TYPE))).toEqual({
      status: 400,
      code: 'ERR_BAD_REQUEST',
      message: 'POST /reload takes cold, wait-canary: unknown field "force"; unknown field "__proto__"',
    });
    expect(refusal(await handleControl(t, 'POST', '/reload', '{"cold": "yes"}', JSON_TYPE)).message).toBe(
      'POST /reload takes cold, wait-canary: field "cold": expected boolean, got "yes"',
    );
    expect(refusal(await handleControl(t, 'POST', '/reload?cold=maybe')).message).toBe('POST /reload takes cold, wait-canary: field "cold": expected boolean, got "maybe"');
    expect(refusal(await handleControl(t, 'POST', '/reload?cld=1')).message).toBe('POST /reload takes cold, wait-canary: unknown field "cld"');
    expect(refusal(await handleControl(t, 'POST', '/stop?cold=maybe&__proto__=x')).message).toBe(
      'POST /stop takes no parameters: unknown field "cold"; unknown field "__proto__"',
    );
    expect(refusal(await handleControl(t, 'POST', '/stop', '{"force": true}', JSON_TYPE))).toEqual({
      status: 400,
      code: 'ERR_BAD_REQUEST',
      message: 'POST /stop takes no parameters: unknown field "force"',
    });
    expect(calls).toEqual([]);
  });

  it('a non-empty body that is not application/json answers 415', async () => {
    const { t, calls } = target();
    expect(refusal(await handleControl(t, 'POST', '/reload', 'cold=1', 'application/x-www-form-urlencoded'))).toEqual({
      status: 415,
      code: 'ERR_BAD_REQUEST',
      message: 'POST /reload takes a JSON body: expected content-type application/json, got application/x-www-form-urlencoded',
    });
    expect(refusal(await handleControl(t, 'POST', '/reload', '{"cold": true}')).status).toBe(415);
    expect(calls).toEqual([]);
  });

  it('a GET with a body answers 400', async () => {
    const { t, calls } = target();
    expect(refusal(await handleControl(t, 'GET', '/status', '{}', JSON_TYPE))).toEqual({
      status: 400,
      code: 'ERR_BAD_REQUEST',
      message: 'GET /status takes no request body (got 2 bytes)',
    });
    expect(calls).toEqual([]);
  });
});

/** A request body that counts how many chunks were pulled from it. */
function body(chunks: Buffer[], headers: Record<string, string> = {}) {
  let pulled = 0;
  const stream = Readable.from(
    (function* () {
      for (const c of chunks) {
        pulled += 1;
        yield c;
      }
    })(),
    { objectMode: false },
  );
  return { req: Object.assign(stream, { headers }), pulled: () => pulled };
}

describe('readBody', () => {
  it('reads a body within the limit', async () => {
    const { req } = body([Buffer.from('{"cold"'), Buffer.from(': true}')]);
    expect(await readBody(req, 64)).toEqual({ kind: 'read', text: '{"cold": true}' });
  });

  it('refuses a body whose content-length is over the limit without reading any of it', async () => {
    const { req, pulled } = body([Buffer.alloc(100)], { 'content-length': '100' });
    expect(await readBody(req, 64)).toEqual({ kind: 'too-large' });
    expect(pulled()).toBe(0);
  });

  it('stops reading a body with no content-length as soon as it passes the limit', async () => {
    const { req, pulled } = body(Array.from({ length: 50 }, () => Buffer.alloc(30)));
    expect(await readBody(req, 64)).toEqual({ kind: 'too-large' });
    expect(pulled()).toBeLessThan(10);
  });
});

describe('jsonErrorOffset', () => {
  it('finds where JSON stops being JSON', () => {
    expect(jsonErrorOffset('{"a": [1, {"b": null}], "c": "\\u0041"}')).toBe(-1);
    expect(jsonErrorOffset('[1,,2]')).toBe(3);
    expect(jsonErrorOffset('{"a" 1}')).toBe(1);
    expect(jsonErrorOffset('{"a": nulx}')).toBe(9);
    expect(jsonErrorOffset('{"a": 1}\n x')).toBe(10);
    expect(jsonErrorOffset('['.repeat(100_000))).toBe(100_000);
  });
});
