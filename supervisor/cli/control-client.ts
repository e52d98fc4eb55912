import { BatonError } from '../../shared/errors.ts';
import { checkControlSocketPath } from '../os/paths.ts';
import { readReply, type ControlReplyBytes } from './control-reply.ts';

// node:net alone, with the request written and the answer read here: node:http's client (its
// modules, the parser's set-up and the request's outgoing-message machinery) was ~4 ms of a client
// command's start on a deploy's path (issue #19), for one exchange with a server of our own that
// always answers with a Content-Length and closes (supervisor/control/server.ts). getBuiltinModule
// hands over the CommonJS exports without an ES module facade.
const net = process.getBuiltinModule('node:net');

export interface ControlResponse {
  status: number;
  body: unknown;
}

/**
 * One request to an instance's control socket; ERR_CONTROL_UNREACHABLE when nobody accepts it,
 * ERR_TIMEOUT when a supervisor accepts but does not answer within `timeoutMs` (a wedged one).
 */
export function controlRequest(socketPath: string, method: string, path: string, timeoutMs = 10_000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    // A socket another user could have put there would answer for an instance that is not ours.
    checkControlSocketPath(socketPath);
    // A fresh connection each time: a pooled one could outlive the supervisor it reached (an upgrade).
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (outcome: ControlResponse | Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const unreachable = (code: string, cause?: Error): BatonError =>
      new BatonError('ERR_CONTROL_UNREACHABLE', `no Baton instance answers at ${socketPath} (${code}): is it running?`, { cause });
    // A reply that cannot be one fails now, not at the timeout of a server that never closes.
    const settle = (reply: ControlReplyBytes | Error): void => {
      if (reply instanceof Error) return finish(new BatonError('ERR_CONTROL', `unexpected reply from ${socketPath}: ${reply.message}`, { cause: reply }));
      const text = reply.body.toString('utf8');
      try {
        finish({ status: reply.status, body: JSON.parse(text) });
      } catch (err) {
        finish(new BatonError('ERR_CONTROL', `unexpected reply from ${socketPath}: ${text.slice(0, 200)}`, { cause: err }));
      }
    };
    socket.setTimeout(timeoutMs, () => {
      finish(new BatonError('ERR_TIMEOUT', `the Baton instance at ${socketPath} did not answer ${method} ${path} within ${timeoutMs / 1000} s`));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish(unreachable(err.code ?? err.message, err)));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      // Whole once its Content-Length has come: no need to wait for the close. A large answer is
      // read once, at the close, not again with every chunk.
      if (received > 1024 * 1024) return;
      const reply = readReply(Buffer.concat(chunks), false);
      if (reply) settle(reply);
    });
    socket.on('end', () => {
      if (settled) return;
      const bytes = Buffer.concat(chunks);
      // What node:http's client called a hang-up: the connection closed with nothing said.
      if (bytes.length === 0) return finish(unreachable('ECONNRESET'));
      // Closed, a reply is whole or wrong: never undefined.
      settle(readReply(bytes, true) as ControlReplyBytes | Error);
    });
    // Written, not ended: a server that closes when its reader half-closes would cut the answer.
    socket.write(`${method} ${path} HTTP/1.1\r\nhost: baton\r\naccept: application/json\r\nconnection: close\r\n\r\n`);
  });
}
