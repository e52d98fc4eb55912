import { describe, expect, it } from 'vitest';
import { BatonError } from '../../shared/errors.ts';
import { handleControl, type ControlTarget } from '../../supervisor/control-api.ts';
import type { StatSample } from '../../shared/stats/index.ts';
import type { ReloadResult, StatusSnapshot } from '../../supervisor/supervisor.ts';

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
    reload: () => {
      calls.push('reload');
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
        error: { code: 'ERR_CONTROL', message: 'unknown endpoint GET /restart; endpoints: GET /status, GET /stats, GET /metrics, POST /reload, POST /stop' },
      },
    });
    expect(calls).toEqual([]);
  });

  it('a wrong method answers 405 naming the right one, and does nothing', async () => {
    const { t, calls } = target();
    expect(await handleControl(t, 'GET', '/reload')).toEqual({
      status: 405,
      body: { ok: false, error: { code: 'ERR_CONTROL', message: '/reload takes POST, not GET' } },
    });
    expect((await handleControl(t, 'DELETE', '/status')).status).toBe(405);
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
    expect(reply.body).toContain('# TYPE baton_reloads_ok counter\nbaton_reloads_ok 3\n');
    expect(reply.body).toContain('http_requests{code="200"} 12');
  });

  it('a filter that is not a regular expression answers 400 and reads nothing', async () => {
    const { t, calls } = target();
    const reply = await handleControl(t, 'GET', '/stats?filter=(');
    expect(reply.status).toBe(400);
    expect(JSON.stringify(reply.body)).toContain('invalid filter \\"(\\"');
    expect(calls).toEqual([]);
  });
});
