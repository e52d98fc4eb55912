/**
 * `baton top`: a live terminal view of a running instance — generations (and their workers when
 * the supervisor reports them), CPU, RSS, V8 heap, event-loop delay, requests per second, open
 * connections — redrawn in place every `--every` ms until `q` (or Ctrl-C). Without a terminal it
 * prints one frame and exits, like `top -b -n 1`.
 */
import { parseArgs } from 'node:util';
import { BatonError } from '../../shared/errors.ts';
import { formatDuration } from '../../shared/units.ts';
import { clientSocket, CLIENT_OPTIONS } from './client-options.ts';
import { controlRequest } from './control-client.ts';

/** Counters counted as requests: the proxy's downstream_rq_total, an app's `…requests` / `…requests_total`. */
const REQUESTS = /(^|\.)(downstream_rq_total|requests|requests_total)$/;

interface GenerationRow {
  generation: number;
  pid: number;
  state: string;
  uptimeMs: number;
  connections: number | null;
  workers?: { pid: number; state?: string }[];
  memory?: { rss: number | null; heapUsed?: number; loopDelayP50?: number; loopDelayP99?: number; loopUtilization?: number; cpuMs?: number; growing?: boolean };
}

interface Frame {
  at: number;
  instance: string;
  generations: GenerationRow[];
  requests: number;
}

async function sample(socket: string): Promise<Frame> {
  const [status, stats] = await Promise.all([
    controlRequest(socket, 'GET', '/status'),
    controlRequest(socket, 'GET', `/stats?filter=${encodeURIComponent(REQUESTS.source)}`),
  ]);
  const s = status.body as { instance: string; generations: GenerationRow[] };
  const samples = ((stats.body as { stats?: { kind: string; value?: number }[] }).stats ?? []).filter((x) => x.kind === 'counter');
  return { at: Date.now(), instance: s.instance, generations: s.generations ?? [], requests: samples.reduce((a, x) => a + (x.value ?? 0), 0) };
}

const mib = (v: number | null | undefined): string => (typeof v === 'number' && v >= 0 ? `${(v / 1048576).toFixed(1)}M` : '–');
const ms = (v: number | undefined): string => (typeof v === 'number' && v >= 0 ? v.toFixed(1) : '–');

/** The frame as text lines; `prev` gives the rates (CPU %, req/s). */
export function renderTop(now: Frame, prev: Frame | undefined): string {
  const dt = prev ? (now.at - prev.at) / 1000 : 0;
  const rps = prev && dt > 0 ? Math.max(0, (now.requests - prev.requests) / dt).toFixed(1) : '–';
  const rows = [['GEN', 'PID', 'STATE', 'UPTIME', 'CPU%', 'RSS', 'HEAP', 'LOOP p50', 'LOOP p99', 'ELU%', 'CONNS', 'WORKERS']];
  for (const g of now.generations) {
    const before = prev?.generations.find((p) => p.generation === g.generation)?.memory?.cpuMs;
    const cpu = g.memory?.cpuMs !== undefined && before !== undefined && dt > 0 ? ((g.memory.cpuMs - before) / (dt * 10)).toFixed(1) : '–';
    const m = g.memory;
    rows.push([
      String(g.generation),
      String(g.pid),
      g.state + (m?.growing ? ' GROWING' : ''),
      formatDuration(g.uptimeMs),
      cpu,
      mib(m?.rss),
      mib(m?.heapUsed),
      ms(m?.loopDelayP50),
      ms(m?.loopDelayP99),
      m?.loopUtilization === undefined ? '–' : (m.loopUtilization * 100).toFixed(0),
      g.connections === null ? '–' : String(g.connections),
      g.workers ? String(g.workers.length) : '–',
    ]);
    for (const w of g.workers ?? []) rows.push(['', `  ${w.pid}`, w.state ?? '', '', '', '', '', '', '', '', '', '']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((c, i) => (i < 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
  const head = `baton top — instance ${now.instance} — ${new Date(now.at).toLocaleTimeString()} — requests/s ${rps}   (q quits)`;
  return [head, '', ...table].join('\n');
}

/** `baton top`. */
export async function top(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({ args, options: { ...CLIENT_OPTIONS, every: { type: 'string' } }, strict: true }).values;
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
  const every = values.every === undefined ? 1000 : Number(values.every);
  if (!(every >= 100 && every <= 60_000)) throw new BatonError('ERR_USAGE', `--every must be between 100 and 60000 ms, not ${values.every}`);
  const socket = await clientSocket(values);
  const out = process.stdout;
  if (!out.isTTY || !process.stdin.isTTY) {
    const first = await sample(socket);
    await new Promise((r) => setTimeout(r, Math.min(every, 1000)));
    out.write(`${renderTop(await sample(socket), first)}\n`);
    return 0;
  }
  // The alternate screen, restored on the way out, so the shell's scrollback is left as it was.
  out.write('\x1b[?1049h\x1b[?25l');
  const restore = (): void => {
    out.write('\x1b[?25h\x1b[?1049l');
    process.stdin.setRawMode(false);
    process.stdin.pause();
  };
  process.stdin.setRawMode(true);
  process.stdin.resume();
  return new Promise<number>((resolve) => {
    let prev: Frame | undefined;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (code: number, message?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      restore();
      if (message) process.stderr.write(`baton: ${message}\n`);
      resolve(code);
    };
    process.stdin.on('data', (key: Buffer) => {
      const k = key.toString();
      if (k === 'q' || k === 'Q' || k === '\x03') finish(0);
    });
    const tick = async (): Promise<void> => {
      try {
        const frame = await sample(socket);
        if (done) return;
        // Home, draw, clear what is left of the previous frame: redrawn in place, no flicker.
        out.write(`\x1b[H${renderTop(frame, prev).split('\n').join('\x1b[K\n')}\x1b[K\x1b[J`);
        prev = frame;
      } catch (err) {
        return finish(1, (err as Error).message);
      }
      timer = setTimeout(() => void tick(), every);
    };
    void tick();
  });
}
