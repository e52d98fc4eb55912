/**
 * `baton events`: the supervisor's typed events (GET /events) as NDJSON on stdout, one event a
 * line with `supervisor`, the pid that published it. Following, it reads on across `baton
 * upgrade`: when a stream ends it asks the control socket again, and a successor's events (whose
 * numbers start over) come next; it ends when nobody answers there any more.
 */
import http from 'node:http';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BatonError } from '../../shared/errors.ts';
import { checkControlSocketPath } from '../os/paths.ts';
import { clientSocket } from './client-options.ts';

const OPTIONS = {
  name: { type: 'string' },
  'control-socket': { type: 'string' },
  config: { type: 'string', short: 'c' },
  after: { type: 'string' },
  'no-follow': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** How one GET /events ended: `gone` when nobody answered (a stopped instance). */
type StreamEnd = { gone: true; err: NodeJS.ErrnoException } | { gone: false };

/** `baton events [--no-follow] [--after N]`: 0 once the stream (and any successor's) has ended. */
export async function events(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true }));
  } catch (err) {
    throw new BatonError('ERR_USAGE', (err as Error).message, { cause: err });
  }
  const after = values.after ?? '0';
  if (!/^\d{1,15}$/.test(after)) throw new BatonError('ERR_USAGE', `--after ${JSON.stringify(after)}: expected an event number (0 or more)`);
  const socketPath = await clientSocket(values);
  checkControlSocketPath(socketPath);
  const reader: Reader = { follow: values['no-follow'] !== true, after: Number(after), printed: new Map(), closed: false, request: undefined };
  process.stdout.on('error', () => {
    // A reader that went away (`baton events | head`): done.
    reader.closed = true;
    reader.request?.destroy();
  });
  for (let first = true; ; first = false) {
    const end = await stream(socketPath, reader);
    if (end.gone && first) throw unreachable(socketPath, end.err);
    if (end.gone || !reader.follow || reader.closed) return 0;
    // Not at once: a supervisor that ends every stream straight away must not make this spin.
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Reader {
  follow: boolean;
  /** `--after`: in the numbers of the first supervisor that answers. */
  after: number;
  /** The last number printed of each supervisor pid: a stream read again goes on from there. */
  printed: Map<number, number>;
  closed: boolean;
  request: http.ClientRequest | undefined;
}

/** One GET /events, printed as it comes; resolves when it ends. */
function stream(socketPath: string, reader: Reader): Promise<StreamEnd> {
  return new Promise((resolve, reject) => {
    const path = `/events?after=${reader.printed.size === 0 ? reader.after : 0}&follow=${reader.follow ? 1 : 0}`;
    const req = http.get({ socketPath, path, agent: false }, (res) => {
      if (res.statusCode !== 200) return refused(res, reject);
      const pid = Number(res.headers['x-baton-pid']);
      if (reader.printed.size === 0) reader.printed.set(pid, reader.after);
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        let out = '';
        for (const text of lines) {
          if (text === '') continue;
          const event = JSON.parse(text) as { seq: number };
          if (event.seq <= (reader.printed.get(pid) ?? 0)) continue;
          reader.printed.set(pid, event.seq);
          out += `${JSON.stringify({ ...event, supervisor: pid })}\n`;
        }
        if (out !== '' && !reader.closed && !process.stdout.write(out)) {
          res.pause();
          process.stdout.once('drain', () => res.resume());
        }
      });
      res.on('close', () => resolve({ gone: false }));
    });
    reader.request = req;
    req.on('error', (err: NodeJS.ErrnoException) => resolve(reader.closed ? { gone: false } : { gone: true, err }));
  });
}

/** A reply other than a stream: an older supervisor without GET /events, or a refusal. */
function refused(res: http.IncomingMessage, reject: (err: Error) => void): void {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (text += c));
  res.on('end', () => {
    let message = text.slice(0, 200);
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not JSON: said as it came
    }
    const why = res.statusCode === 404 ? `this supervisor offers no GET /events (an older Baton?): ${message}` : message;
    reject(new BatonError('ERR_CONTROL', why));
  });
}

function unreachable(socketPath: string, err: NodeJS.ErrnoException): BatonError {
  return new BatonError('ERR_CONTROL_UNREACHABLE', `no Baton instance answers at ${socketPath} (${err.code ?? err.message}): is it running?`, { cause: err });
}
