// The supervised runtime's side of shared values over a real IPC channel, the test playing the
// supervisor: a value is held when the supervisor's `share` comes (its own included), and a
// supervisor that does not know `share` leaves the process the only holder.
import { fork } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, unrecognized } from '../../../shared/protocol.ts';
import { NODE_FLAGS, ROOT } from '../../helpers/baton.ts';

type Message = { baton?: number; seq?: number; type?: string; app?: string; [key: string]: unknown };

/** Runs the fixture, answering each Baton message with `answer`; resolves with its app message and every Baton message it sent. */
function run(answer: (m: Message, send: (body: Record<string, unknown>) => void) => void): Promise<{ result: Message; seen: Message[] }> {
  const child = fork(path.join(ROOT, 'test/fixtures/shares-a-value.ts'), [], {
    execArgv: NODE_FLAGS,
    env: { ...process.env, BATON_PROTOCOL: String(PROTOCOL_VERSION), BATON_GENERATION: '3' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const send = (body: Record<string, unknown>): void => void child.send({ baton: PROTOCOL_VERSION, seq: ++seq, ...body });
  const seen: Message[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no answer from the fixture; it sent ${JSON.stringify(seen)}`));
    }, 15_000);
    child.on('message', (m: Message) => {
      if (m.app === 'set') {
        clearTimeout(timer);
        resolve({ result: m, seen });
        return;
      }
      seen.push(m);
      answer(m, send);
    });
    child.on('error', reject);
  });
}

const ack = (m: Message, body: Record<string, unknown>) => ({ type: 'ack', ack: m.seq, ...body });

describe('shared values, supervised (a real IPC channel)', () => {
  it('holds the hello\'s values before any later message, and its own value only when the supervisor sends it back; acks the supervisor\'s share', async () => {
    let hello: Message | undefined;
    const { result, seen } = await run((m, send) => {
      if (m.type === 'hello') hello = m;
      if (m.type === 'share') {
        // All three in one read: the hello's older value of the key must not overtake the share.
        send(ack(hello as Message, { ok: true, generation: 3, worker: 0, instance: 't', startedAt: Date.now(), shared: { preset: 7, mode: 'stale', 'bad key': 1 } }));
        send({ type: 'share', key: m.key, value: m.value });
        send(ack(m, { ok: true, workers: 1 }));
      }
    });
    expect(result).toEqual({ app: 'set', mode: 'fail', preset: 7, heard: [['preset', 7], ['mode', 'stale'], ['mode', 'fail']] });
    expect(seen.find((m) => m.type === 'share')).toMatchObject({ key: 'mode', value: 'fail' });
    // The supervisor's own `share` (seq 2 of the test's messages) was acknowledged.
    expect(seen.find((m) => m.type === 'ack' && m.ack === 2)).toMatchObject({ ok: true });
  });

  it('a supervisor that answers "unrecognized" (one from before shared values) leaves the value with this process alone', async () => {
    const { result } = await run((m, send) => {
      if (m.type === 'hello') send(ack(m, { ok: true, generation: 3, worker: 0, instance: 't', startedAt: Date.now() }));
      if (m.type === 'share') send(ack(m, unrecognized('share')));
    });
    expect(result).toEqual({ app: 'set', mode: 'fail', heard: [['mode', 'fail']] });
  });

  it('a refusal from the supervisor rejects set() with its code, and nothing is held', async () => {
    const { result } = await run((m, send) => {
      if (m.type === 'hello') send(ack(m, { ok: true, generation: 3, worker: 0, instance: 't', startedAt: Date.now() }));
      if (m.type === 'share') send(ack(m, { ok: false, error: { code: 'ERR_BAD_REQUEST', message: "generation 3 holds 64 shared values already: no room for 'mode'" } }));
    });
    expect(result).toEqual({ app: 'set', error: { code: 'ERR_BAD_REQUEST', message: "generation 3 holds 64 shared values already: no room for 'mode'" } });
  });
});
