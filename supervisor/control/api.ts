import { statFilter } from './stat-filter.ts';
import { BatonError } from '../../shared/errors.ts';
import { PROMETHEUS_CONTENT_TYPE, toJSON, toPrometheus, type GenerationEntry, type StatSample } from '../../shared/stats/index.ts';
import type { ReplyBody } from '../../shared/protocol.ts';
import { dashboardRoute } from './dashboard.ts';
import { BadRequest, noBody, paramsOf, type Field, type Params } from './api-params.ts';
import type { ProfileResult } from '../core/generation-requests.ts';
import type { ReloadResult, RollbackResult, StatusSnapshot, Supervisor } from '../core/supervisor.ts';
import type { UpgradeResult } from '../handover/predecessor.ts';
import { canaryAction, waitCanary, type CanaryControl } from '../canary/control.ts';
import { eventStreamQuery, type EventSource, type EventStreamReply } from './event-stream.ts';

/** What the control API drives. */
export interface ControlTarget {
  status(): StatusSnapshot;
  reload(options?: { cold?: boolean }): Promise<ReloadResult>;
  stop(reason: string): unknown;
  stats(filter?: RegExp): StatSample[];
  /** The stats segment's generation table (absent: /metrics keeps `writer` labels as slot numbers). */
  statsGenerations?(): GenerationEntry[];
  /** Memory tracking (absent: the endpoints are not offered). */
  memoryReport?(): ReturnType<Supervisor['memoryReport']>;
  memorySeries?(generation?: number): ReturnType<Supervisor['memorySeries']>;
  release?(generation?: number): Promise<ReplyBody>;
  heapSnapshot?(generation?: number, options?: { retire?: boolean; compare?: boolean }): Promise<ProfileResult>;
  heapProfile?(generation: number | undefined, seconds: number): Promise<ProfileResult>;
  cpuProfile?(generation: number | undefined, seconds: number): Promise<ProfileResult>;
  /** Replaces the supervisor process (absent: the endpoint is not offered). */
  upgrade?(): Promise<UpgradeResult>;
  /** `baton rollback`: unparks a canary window's previous generation or relaunches the previous release (absent: only the window's). */
  rollback?(): Promise<RollbackResult>;
  /** The canary window (absent: /rollback and /promote answer 409). */
  canary?: CanaryControl;
  /** The supervisor's typed events (absent: GET /events is not offered). */
  events?: EventSource;
}

export interface ControlReply {
  status: number;
  /** JSON-encoded unless `contentType` says the body is text. */
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /** Answer with these events as NDJSON (and what follows) instead of `body`. */
  events?: EventStreamReply;
}

type Route = {
  method: 'GET' | 'POST';
  memory?: true;
  /** Offered only where the target can upgrade the supervisor. */
  upgrade?: true;
  /** Offered only where the target publishes events. */
  events?: true;
  /** The parameters a POST takes; a GET takes no body. */
  fields?: Field[];
  run(target: ControlTarget, query: URLSearchParams, params: Params): Promise<ControlReply> | ControlReply;
};

const ROUTES: Record<string, Route> = {
  '/status': { method: 'GET', run: (t) => ({ status: 200, body: t.status() }) },
  '/stats': { method: 'GET', run: (t, q) => ({ status: 200, body: `${toJSON(t.stats(filterOf(q)))}\n`, contentType: 'application/json' }) },
  '/metrics': {
    method: 'GET',
    run: (t, q) => ({ status: 200, body: metricsText(t, filterOf(q)), contentType: PROMETHEUS_CONTENT_TYPE }),
  },
  '/reload': {
    method: 'POST',
    fields: ['cold', 'wait-canary'],
    run: async (t, _q, p) => {
      try {
        const result = await t.reload(p.cold ? { cold: true } : {});
        return { status: 200, body: { ok: true, ...result, ...(p['wait-canary'] ? await waitCanary(t.canary, result.generation) : {}) } };
      } catch (err) {
        const e = err as BatonError;
        return { status: e.code === 'ERR_SHUTTING_DOWN' ? 503 : 409, body: { ok: false, error: { code: e.code, message: e.message } } };
      }
    },
  },
  '/upgrade': {
    method: 'POST',
    upgrade: true,
    fields: [],
    run: async (t) => {
      try {
        return { status: 200, body: { ok: true, ...(await t.upgrade!()) } };
      } catch (err) {
        const e = err as BatonError;
        return { status: e.code === 'ERR_SHUTTING_DOWN' ? 503 : 409, body: { ok: false, error: { code: e.code, message: e.message } } };
      }
    },
  },
  '/events': {
    method: 'GET',
    events: true,
    run: (t, q) => {
      try {
        return { status: 200, body: '', events: { source: t.events!, ...eventStreamQuery(q) } };
      } catch (err) {
        return { status: 400, body: { ok: false, error: { code: (err as BatonError).code, message: (err as Error).message } } };
      }
    },
  },
  '/rollback': {
    method: 'POST',
    fields: [],
    run: async (t) => {
      if (!t.rollback) return canaryAction(t.canary, 'rollback');
      try {
        return { status: 200, body: { ok: true, ...(await t.rollback()) } };
      } catch (err) {
        const e = err as BatonError;
        return { status: e.code === 'ERR_SHUTTING_DOWN' ? 503 : 409, body: { ok: false, error: { code: e.code ?? 'ERR_CONTROL', message: e.message } } };
      }
    },
  },
  '/promote': { method: 'POST', fields: [], run: (t) => canaryAction(t.canary, 'promote') },
  '/stop': {
    method: 'POST',
    fields: [],
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
    fields: ['generation'],
    run: async (t, _q, p) => answer(async () => t.release!(p.generation)),
  },
  '/heap-snapshot': {
    method: 'POST',
    memory: true,
    fields: ['generation', 'retire', 'compare'],
    run: async (t, _q, p) =>
      answer(async () => ({ ok: true, ...(await t.heapSnapshot!(p.generation, { ...(p.retire !== undefined ? { retire: p.retire } : {}), ...(p.compare ? { compare: true } : {}) })) })),
  },
  '/heap-profile': {
    method: 'POST',
    memory: true,
    fields: ['generation', 'seconds'],
    run: async (t, _q, p) => answer(async () => ({ ok: true, ...(await t.heapProfile!(p.generation, p.seconds ?? 10)) })),
  },
  '/cpu-profile': {
    method: 'POST',
    memory: true,
    fields: ['generation', 'seconds'],
    run: async (t, _q, p) => answer(async () => ({ ok: true, ...(await t.cpuProfile!(p.generation, p.seconds ?? 10)) })),
  },
  '/dashboard': {
    method: 'GET',
    memory: true,
    run: () => dashboardRoute('/dashboard')!,
  },
  '/dashboard/uplot.js': { method: 'GET', memory: true, run: () => dashboardRoute('/dashboard/uplot.js')! },
  '/dashboard/uplot.css': { method: 'GET', memory: true, run: () => dashboardRoute('/dashboard/uplot.css')! },
  '/dashboard/app.js': { method: 'GET', memory: true, run: () => dashboardRoute('/dashboard/app.js')! },
};

/** The supervisor's Prometheus text: every generation's stats and Baton's own, per-generation series labelled by generation number. */
export function metricsText(t: Pick<ControlTarget, 'stats' | 'statsGenerations'>, filter?: RegExp): string {
  const generations = t.statsGenerations?.();
  return toPrometheus(t.stats(filter), generations ? { generations } : {});
}

/** `/memory`: the report, with an Envoy-style summary (allocated, heap size, free in heap, released) over live generations. */
function memoryBody(report: ReturnType<Supervisor['memoryReport']>): unknown {
  const live = report.generations.filter((g) => g.exitedAt === undefined);
  const sum = (pick: (g: (typeof live)[number]) => number | null): number | null =>
    live.some((g) => pick(g) !== null) ? live.reduce((a, g) => a + (pick(g) ?? 0), 0) : null;
  return {
    allocated: sum((g) => g.allocator.allocated),
    heap_size: sum((g) => g.allocator.heapSize),
    free_in_heap: sum((g) => g.allocator.freeInHeap),
    returned: sum((g) => g.allocator.returned),
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

/**
 * Answers one control request; never throws, and a request refused with a 4xx reaches no handler.
 * `body` is the request body as read (empty: none), `contentType` its content-type header.
 */
export async function handleControl(target: ControlTarget, method: string, url: string, body = '', contentType?: string): Promise<ControlReply> {
  let parsed: URL;
  try {
    parsed = new URL(url, 'http://baton');
  } catch {
    return { status: 400, body: { ok: false, error: { code: 'ERR_BAD_REQUEST', message: `invalid request target ${JSON.stringify(url.slice(0, 200))}` } } };
  }
  const path = parsed.pathname;
  const offered = (r: Route): boolean =>
    (!r.memory || typeof target.memoryReport === 'function') && (!r.upgrade || typeof target.upgrade === 'function') && (!r.events || target.events !== undefined);
  const route = Object.hasOwn(ROUTES, path) && offered(ROUTES[path]!) ? ROUTES[path] : undefined;
  if (!route) {
    const known = Object.entries(ROUTES).filter(([, r]) => offered(r)).map(([p, r]) => `${r.method} ${p}`).join(', ');
    return error(404, `unknown endpoint ${method} ${path}; endpoints: ${known}`);
  }
  if (route.method !== method) return { ...error(405, `${path} takes ${route.method}, not ${method}`), headers: { allow: route.method } };
  try {
    const params = route.fields ? paramsOf(`${method} ${path}`, route.fields, parsed.searchParams, body, contentType) : noBody(`${method} ${path}`, body);
    return await route.run(target, parsed.searchParams, params);
  } catch (err) {
    if (err instanceof BadRequest) return { status: err.status, body: { ok: false, error: { code: err.code, message: err.message } } };
    const e = err as BatonError;
    return e.code === 'ERR_USAGE'
      ? error(400, e.message)
      : { status: 500, body: { ok: false, error: { code: 'ERR_CONTROL', message: (err as Error).message } } };
  }
}

/** `?filter=RE`: a regular expression on stat names, matched in linear time. */
function filterOf(query: URLSearchParams): RegExp | undefined {
  const text = query.get('filter');
  return text === null ? undefined : statFilter(text);
}

function error(status: number, message: string): ControlReply {
  return { status, body: { ok: false, error: { code: 'ERR_CONTROL', message } } };
}
