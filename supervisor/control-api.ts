import { BatonError } from '../shared/errors.ts';
import { PROMETHEUS_CONTENT_TYPE, toJSON, toPrometheus, type StatSample } from '../shared/stats/index.ts';
import type { ReplyBody } from '../shared/protocol.ts';
import { DASHBOARD_HTML } from './dashboard.ts';
import type { ProfileResult, ReloadResult, StatusSnapshot, Supervisor } from './supervisor.ts';
import type { UpgradeResult } from './upgrade.ts';

/** What the control API drives. */
export interface ControlTarget {
  status(): StatusSnapshot;
  reload(options?: { cold?: boolean }): Promise<ReloadResult>;
  stop(reason: string): unknown;
  stats(filter?: RegExp): StatSample[];
  /** Memory tracking (absent: the endpoints are not offered). */
  memoryReport?(): ReturnType<Supervisor['memoryReport']>;
  memorySeries?(generation?: number): ReturnType<Supervisor['memorySeries']>;
  release?(generation?: number): Promise<ReplyBody>;
  heapSnapshot?(generation?: number): Promise<ProfileResult>;
  heapProfile?(generation: number | undefined, seconds: number): Promise<ProfileResult>;
  /** Replaces the supervisor process (absent: the endpoint is not offered). */
  upgrade?(): Promise<UpgradeResult>;
}

export interface ControlReply {
  status: number;
  /** JSON-encoded unless `contentType` says the body is text. */
  body: unknown;
  contentType?: string;
}

type Route = { method: string; memory?: true; upgrade?: true; run(target: ControlTarget, query: URLSearchParams): Promise<ControlReply> | ControlReply };

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
  '/upgrade': {
    method: 'POST',
    upgrade: true,
    run: async (t) => {
      try {
        return { status: 200, body: { ok: true, ...(await t.upgrade!()) } };
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
  '/memory': {
    method: 'GET',
    memory: true,
    run: (t) => ({ status: 200, body: memoryBody(t.memoryReport!()) }),
  },
  '/memory/series': {
    method: 'GET',
    memory: true,
    run: (t, q) => ({ status: 200, body: { generations: t.memorySeries!(generationOf(q)) } }),
  },
  '/memory/release': {
    method: 'POST',
    memory: true,
    run: async (t, q) => answer(async () => t.release!(generationOf(q))),
  },
  '/heap-snapshot': {
    method: 'POST',
    memory: true,
    run: async (t, q) => answer(async () => ({ ok: true, ...(await t.heapSnapshot!(generationOf(q))) })),
  },
  '/heap-profile': {
    method: 'POST',
    memory: true,
    run: async (t, q) => answer(async () => ({ ok: true, ...(await t.heapProfile!(generationOf(q), Number(q.get('seconds') ?? 10))) })),
  },
  '/dashboard': {
    method: 'GET',
    memory: true,
    run: () => ({ status: 200, body: DASHBOARD_HTML, contentType: 'text/html; charset=utf-8' }),
  },
};

/** `/memory`: the report, with an Envoy-style summary (allocated, heap size, free in heap, released) over live generations. */
function memoryBody(report: ReturnType<Supervisor['memoryReport']>): unknown {
  const live = report.generations.filter((g) => g.exitedAt === undefined);
  const sum = (pick: (g: (typeof live)[number]) => number | null): number | null =>
    live.some((g) => pick(g) !== null) ? live.reduce((a, g) => a + (pick(g) ?? 0), 0) : null;
  return {
    allocated: sum((g) => g.allocator.allocated),
    heap_size: sum((g) => g.allocator.heapSize),
    free_in_heap: sum((g) => g.allocator.freeInHeap),
    released: sum((g) => g.allocator.released),
    rss: sum((g) => g.summary.rss?.now ?? null),
    ...report,
  };
}

async function answer(run: () => Promise<unknown>): Promise<ControlReply> {
  try {
    return { status: 200, body: await run() };
  } catch (err) {
    const e = err as BatonError;
    return { status: e.code === 'ERR_USAGE' ? 400 : 409, body: { ok: false, error: { code: e.code ?? 'ERR_CONTROL', message: e.message } } };
  }
}

/** `?generation=N` (absent: the active one). */
function generationOf(query: URLSearchParams): number | undefined {
  const text = query.get('generation');
  if (text === null || text === '') return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new BatonError('ERR_USAGE', `invalid generation ${JSON.stringify(text)}: expected a number`);
  return n;
}

/** Answers one control request; never throws. */
export async function handleControl(target: ControlTarget, method: string, url: string): Promise<ControlReply> {
  const parsed = new URL(url, 'http://baton');
  const path = parsed.pathname;
  const offered = (r: Route): boolean =>
    (!r.memory || typeof target.memoryReport === 'function') && (!r.upgrade || typeof target.upgrade === 'function');
  const route = Object.hasOwn(ROUTES, path) && offered(ROUTES[path]!) ? ROUTES[path] : undefined;
  if (!route) {
    const known = Object.entries(ROUTES).filter(([, r]) => offered(r)).map(([p, r]) => `${r.method} ${p}`).join(', ');
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
