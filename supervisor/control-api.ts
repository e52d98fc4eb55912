import { BatonError } from '../shared/errors.ts';
import type { ReloadResult, StatusSnapshot } from './supervisor.ts';

/** What the control API drives. */
export interface ControlTarget {
  status(): StatusSnapshot;
  reload(): Promise<ReloadResult>;
  stop(reason: string): unknown;
}

export interface ControlReply {
  status: number;
  body: unknown;
}

const ROUTES: Record<string, { method: string; run(target: ControlTarget): Promise<ControlReply> | ControlReply }> = {
  '/status': { method: 'GET', run: (t) => ({ status: 200, body: t.status() }) },
  '/reload': {
    method: 'POST',
    run: async (t) => {
      try {
        return { status: 200, body: { ok: true, ...(await t.reload()) } };
      } catch (err) {
        const e = err as BatonError;
        return { status: e.code === 'ERR_SHUTTING_DOWN' ? 503 : 409, body: { ok: false, error: { code: e.code, message: e.message } } };
      }
    },
  },
  '/stop': {
    method: 'POST',
    run: (t) => {
      void t.stop('baton stop');
      return { status: 202, body: { ok: true } };
    },
  },
};

/** Answers one control request; never throws. */
export async function handleControl(target: ControlTarget, method: string, url: string): Promise<ControlReply> {
  const path = new URL(url, 'http://baton').pathname;
  const route = ROUTES[path];
  if (!route) {
    const known = Object.entries(ROUTES).map(([p, r]) => `${r.method} ${p}`).join(', ');
    return error(404, `unknown endpoint ${method} ${path}; endpoints: ${known}`);
  }
  if (route.method !== method) return error(405, `${path} takes ${route.method}, not ${method}`);
  try {
    return await route.run(target);
  } catch (err) {
    return { status: 500, body: { ok: false, error: { code: 'ERR_CONTROL', message: (err as Error).message } } };
  }
}

function error(status: number, message: string): ControlReply {
  return { status, body: { ok: false, error: { code: 'ERR_CONTROL', message } } };
}
