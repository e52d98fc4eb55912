import { BatonError } from '../shared/errors.ts';
import { PROMETHEUS_CONTENT_TYPE, toJSON, toPrometheus, type StatSample } from '../shared/stats/index.ts';
import type { ReloadResult, StatusSnapshot } from './supervisor.ts';

/** What the control API drives. */
export interface ControlTarget {
  status(): StatusSnapshot;
  reload(options?: { cold?: boolean }): Promise<ReloadResult>;
  stop(reason: string): unknown;
  stats(filter?: RegExp): StatSample[];
}

export interface ControlReply {
  status: number;
  /** JSON-encoded unless `contentType` says the body is text. */
  body: unknown;
  contentType?: string;
}

type Route = { method: string; run(target: ControlTarget, query: URLSearchParams): Promise<ControlReply> | ControlReply };

const ROUTES: Record<string, Route> = {
  '/status': { method: 'GET', run: (t) => ({ status: 200, body: t.status() }) },
  '/stats': { method: 'GET', run: (t, q) => ({ status: 200, body: `${toJSON(t.stats(filterOf(q)))}\n`, contentType: 'application/json' }) },
  '/metrics': {
    method: 'GET',
    run: (t, q) => ({ status: 200, body: toPrometheus(t.stats(filterOf(q))), contentType: PROMETHEUS_CONTENT_TYPE }),
  },
  '/reload': {
    method: 'POST',
    run: async (t, q) => {
      try {
        const cold = q.get('cold');
        return { status: 200, body: { ok: true, ...(await t.reload(cold === '1' || cold === 'true' ? { cold: true } : {})) } };
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
  const parsed = new URL(url, 'http://baton');
  const path = parsed.pathname;
  const route = ROUTES[path];
  if (!route) {
    const known = Object.entries(ROUTES).map(([p, r]) => `${r.method} ${p}`).join(', ');
    return error(404, `unknown endpoint ${method} ${path}; endpoints: ${known}`);
  }
  if (route.method !== method) return error(405, `${path} takes ${route.method}, not ${method}`);
  try {
    return await route.run(target, parsed.searchParams);
  } catch (err) {
    const e = err as BatonError;
    return e.code === 'ERR_USAGE'
      ? error(400, e.message)
      : { status: 500, body: { ok: false, error: { code: 'ERR_CONTROL', message: (err as Error).message } } };
  }
}

/** `?filter=RE`: a regular expression on stat names. */
function filterOf(query: URLSearchParams): RegExp | undefined {
  const text = query.get('filter');
  if (text === null) return undefined;
  try {
    return new RegExp(text);
  } catch (err) {
    throw new BatonError('ERR_USAGE', `invalid filter ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
}

function error(status: number, message: string): ControlReply {
  return { status, body: { ok: false, error: { code: 'ERR_CONTROL', message } } };
}
