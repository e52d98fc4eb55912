import { describe, expect, it } from 'vitest';
import { BatonError } from '../../shared/errors.ts';
import { handleControl, type ControlTarget } from '../../supervisor/control-api.ts';
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
        error: { code: 'ERR_CONTROL', message: 'unknown endpoint GET /restart; endpoints: GET /status, POST /reload, POST /stop' },
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
});
