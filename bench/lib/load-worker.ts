// Load generator, run in a worker thread so the main thread's probe and timers are not delayed by
// it. Every request is counted exactly once, in the phase during which it completed; throughput
// samples are the 200 OK responses per WINDOW_MS window of a phase.
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

export type Kind = 'keep-alive' | 'new-connection';

export interface LoadConfig {
  port: number;
  kind: Kind;
  clients: number;
  windowMs: number;
  timeoutMs: number;
  /** Each client waits this long after each response: a light, steady load instead of as fast as it goes. @default 0 */
  pauseMs?: number;
  /**
   * Tally 200 OK responses by the process that served them, in `binMs` bins of the monotonic
   * clock (`PhaseCounts.byServer`): `body-pid` reads `pid N` from the body (the SDK test app),
   * any other string names a response header carrying the pid (HAProxy's `x-haproxy-pid`). @default none
   */
  identify?: string;
  /** @default 100 */
  binMs?: number;
}

/** 200 OK responses by the pid that served them: `counts[i]` in the monotonic-clock bin `first + i` (of `binMs`). */
export interface ServerTally {
  first: number;
  counts: number[];
}

export interface PhaseCounts {
  requests: number;
  ok: number;
  non200: number;
  refused: number;
  reset: number;
  other: number;
  durationMs: number;
  /** 200 OK responses per full window (responses/s = value * 1000 / windowMs). */
  windows: number[];
  /** The first few failures, verbatim. */
  samples: string[];
  /** Requests sent on a connection opened for them (not reused from the keep-alive pool). */
  newConnections: number;
  /** With `identify`: 200 OK responses per serving pid, binned on the monotonic clock. */
  byServer?: Record<string, ServerTally>;
}

export type WorkerCommand = { type: 'phase'; name: string } | { type: 'stop' };
export type WorkerReply = { type: 'phase'; name: string } | { type: 'result'; phases: Record<string, PhaseCounts> };

const config = workerData as LoadConfig;
const port = parentPort!;
const phases: Record<string, PhaseCounts> = {};
let current: PhaseCounts = fresh();
let phaseStart = performance.now();
let stopped = false;

function fresh(): PhaseCounts {
  return { requests: 0, ok: 0, non200: 0, refused: 0, reset: 0, other: 0, durationMs: 0, windows: [], samples: [], newConnections: 0, ...(config.identify ? { byServer: {} } : {}) };
}

const BIN_MS = config.binMs ?? 100;
/** The monotonic clock (CLOCK_MONOTONIC, shared/reload-timing.ts) in ms: the bins line up with the supervisor's marks and the CPU samples. */
const monotonic = (): number => Number(process.hrtime.bigint()) / 1e6;

function tally(pid: string): void {
  const by = current.byServer!;
  const bin = Math.floor(monotonic() / BIN_MS);
  const t = (by[pid] ??= { first: bin, counts: [] });
  const i = bin - t.first;
  while (t.counts.length <= i) t.counts.push(0);
  t.counts[i]! += 1;
}

function windowSlot(): number {
  const i = Math.floor((performance.now() - phaseStart) / config.windowMs);
  while (current.windows.length <= i) current.windows.push(0);
  return i;
}

function fail(kind: 'refused' | 'reset' | 'other' | 'non200', detail: string): void {
  current.requests += 1;
  current[kind] += 1;
  if (current.samples.length < 10) current.samples.push(`${kind}: ${detail}`);
}

function classify(err: NodeJS.ErrnoException): 'refused' | 'reset' | 'other' {
  if (err.code === 'ECONNREFUSED') return 'refused';
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || /hang up/.test(err.message)) return 'reset';
  return 'other';
}

function once(agent: http.Agent | false): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      f();
      resolve();
    };
    const req = http.request({
      host: '127.0.0.1',
      port: config.port,
      path: '/',
      agent,
      headers: agent === false ? { connection: 'close' } : {},
    });
    req.setTimeout(config.timeoutMs, () => {
      settle(() => fail('other', `timeout after ${config.timeoutMs} ms`));
      req.destroy();
    });
    req.once('socket', () => {
      if (!req.reusedSocket) current.newConnections += 1;
    });
    req.on('response', (res) => {
      let body = '';
      if (config.identify === 'body-pid') res.on('data', (c: Buffer) => void (body += c.toString('latin1')));
      else res.on('data', () => {});
      res.on('end', () =>
        settle(() => {
          if (res.statusCode !== 200) return fail('non200', `status ${res.statusCode}`);
          current.requests += 1;
          current.ok += 1;
          current.windows[windowSlot()]! += 1;
          if (config.identify === 'body-pid') tally(/pid (\d+)/.exec(body)?.[1] ?? '?');
          else if (config.identify) tally(String(res.headers[config.identify] ?? '?'));
        }),
      );
      res.on('error', (err: NodeJS.ErrnoException) => settle(() => fail(classify(err), `${err.code ?? ''} ${err.message} (mid-response)`)));
    });
    req.on('error', (err: NodeJS.ErrnoException) => settle(() => fail(classify(err), `${err.code ?? ''} ${err.message}`)));
    req.end();
  });
}

function closePhase(name: string): void {
  current.durationMs = performance.now() - phaseStart;
  // The last window is partial: keep only full ones as throughput samples.
  current.windows = current.windows.slice(0, Math.floor(current.durationMs / config.windowMs));
  phases[name] = current;
}

let currentName = 'warmup';
const agents: http.Agent[] = [];
const clients: Promise<void>[] = [];
for (let i = 0; i < config.clients; i++) {
  const agent = config.kind === 'keep-alive' ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  if (agent) agents.push(agent);
  clients.push(
    (async () => {
      while (!stopped) {
        await once(agent);
        if (config.pauseMs) await new Promise((r) => setTimeout(r, config.pauseMs));
      }
    })(),
  );
}

port.on('message', (m: WorkerCommand) => {
  if (m.type === 'phase') {
    closePhase(currentName);
    currentName = m.name;
    current = fresh();
    phaseStart = performance.now();
    port.postMessage({ type: 'phase', name: m.name } satisfies WorkerReply);
    return;
  }
  closePhase(currentName);
  current = fresh(); // requests still in flight at stop are not counted in any phase
  stopped = true;
  void Promise.all(clients).then(() => {
    for (const a of agents) a.destroy();
    port.postMessage({ type: 'result', phases } satisfies WorkerReply);
  });
});
