import { describe, expect, it } from 'vitest';
import { BatonError } from '../../shared/errors.ts';
import {
  Correlator,
  dispatch,
  errorBody,
  replyError,
  type ChildMessage,
  type ErrorBody,
  isEnvelope,
  HANDOVER_VERSION,
  PROTOCOL_VERSION,
  unrecognized,
  type Handlers,
  type ReplyBody,
  type SupervisorMessage,
} from '../../shared/protocol.ts';

/** Handlers for the child side (supervisor → child messages) that record what they saw. */
function handlers(drain: Handlers<SupervisorMessage, string>['drain']) {
  const seen: unknown[] = [];
  const table: Handlers<SupervisorMessage, string> = {
    drain: (m, context) => {
      seen.push([m.type, context]);
      return drain(m, context);
    },
    'release-memory': () => ({ ok: true }),
    'heap-snapshot': () => ({ ok: true }),
    'heap-profile': () => ({ ok: true }),
    park: () => ({ ok: true }),
    unpark: () => ({ ok: true }),
    hurry: () => ({ ok: true }),
    'cpu-profile': () => ({ ok: true }),
    share: () => ({ ok: true }),
    ack: (m) => {
      seen.push(['ack', m.ack]);
      return undefined;
    },
  };
  return { table, seen };
}

const drainMessage = { baton: PROTOCOL_VERSION, seq: 4, type: 'drain', deadline: 123 };

describe('dispatch', () => {
  it('runs the handler for the type with the context and returns its reply', async () => {
    const { table, seen } = handlers(() => ({ ok: true, note: 'draining' }));
    expect(await dispatch(table, drainMessage, 'ctx')).toEqual({ ok: true, note: 'draining' });
    const ack = { baton: 1, seq: 5, type: 'ack', ack: 2, ok: true };
    expect(await dispatch(table, ack, 'ctx')).toBeUndefined();
    expect(seen).toEqual([['drain', 'ctx'], ['ack', 2]]);
  });

  it('awaits an async handler', async () => {
    const { table } = handlers(async () => ({ ok: true, later: 1 }));
    expect(await dispatch(table, drainMessage, '')).toEqual({ ok: true, later: 1 });
  });

  it('answers an unknown type with ERR_PROTOCOL, without calling anything', async () => {
    const { table, seen } = handlers(() => ({ ok: true }));
    expect(await dispatch(table, { baton: 1, seq: 1, type: 'teleport' }, '')).toEqual(unrecognized('teleport'));
    expect(unrecognized('teleport')).toEqual({ ok: false, error: { code: 'ERR_PROTOCOL', message: "unrecognized message type 'teleport'" } });
    // Inherited object properties are not handlers.
    expect(await dispatch(table, { baton: 1, seq: 2, type: 'toString' }, '')).toEqual(unrecognized('toString'));
    expect(seen).toEqual([]);
  });

  it('refuses a hello of another protocol version with ERR_PROTOCOL_VERSION, without calling its handler', async () => {
    const seen: unknown[] = [];
    const table: Handlers<ChildMessage, void> = {
      hello: (m) => {
        seen.push(m.type);
        return { ok: true };
      },
      ready: () => undefined,
      connections: () => undefined,
      listen: () => undefined,
      drained: () => undefined,
      'ticket-key': () => undefined,
      reload: () => undefined,
      share: () => undefined,
      ack: () => undefined,
    };
    expect(await dispatch(table, { baton: 2, seq: 1, type: 'hello', pid: 1, runtime: 'x' } as never, undefined)).toEqual({
      ok: false,
      error: { code: 'ERR_PROTOCOL_VERSION', message: `protocol version 2 is not supported: expected ${PROTOCOL_VERSION}` },
    });
    expect(seen).toEqual([]);
  });

  it('never answers an ack: not an error ack, not one of another version, not one whose handler throws', async () => {
    const { table } = handlers(() => ({ ok: true }));
    const errorAck = { baton: 2, seq: 9, type: 'ack', ack: 3, ok: false, error: { code: 'ERR_PROTOCOL_VERSION', message: 'no' } };
    expect(await dispatch(table, errorAck, '')).toBeUndefined();
    const throwing: typeof table = {
      ...table,
      ack: () => {
        throw new Error('bad ack');
      },
    };
    expect(await dispatch(throwing, { baton: 1, seq: 10, type: 'ack', ack: 4, ok: true } as never, '')).toBeUndefined();
    expect(await dispatch({ drain: table.drain } as unknown as typeof table, { baton: 1, seq: 11, type: 'ack', ack: 5, ok: true } as never, '')).toBeUndefined();
  });

  it('two peers of different versions exchange a bounded number of messages, not replies forever', async () => {
    // Peer A speaks this version, peer B a future one that answers everything it cannot read with an error ack.
    const a = new Correlator();
    const { table } = handlers(() => ({ ok: true }));
    let exchanged = 0;
    let inbox: { baton: number; seq: number; type: string }[] = [a.stamp<SupervisorMessage>({ type: 'drain', deadline: 1 })];
    while (inbox.length > 0 && exchanged < 50) {
      const next: typeof inbox = [];
      for (const m of inbox) {
        exchanged += 1;
        // B's side: it does not know version 1 and says so, once per message that is not an ack.
        if (m.baton === PROTOCOL_VERSION && m.type !== 'ack') next.push({ baton: 2, seq: exchanged, type: 'ack', ack: m.seq, ok: false, error: { code: 'ERR_PROTOCOL_VERSION', message: 'v2 only' } } as never);
        // A's side: the real dispatch.
        if (m.baton !== PROTOCOL_VERSION) {
          const reply = await dispatch(table, m, '');
          if (reply) next.push(a.reply<SupervisorMessage>(m.seq, reply));
        }
      }
      inbox = next;
    }
    expect(exchanged).toBe(2);
  });

  it("turns a throwing handler into an error reply carrying the error's code", async () => {
    const coded = handlers(() => {
      throw new BatonError('ERR_LISTENER', 'no such listener');
    });
    expect(await dispatch(coded.table, drainMessage, '')).toEqual({ ok: false, error: { code: 'ERR_LISTENER', message: 'no such listener' } });
    const plain = handlers(async () => {
      throw new Error('boom');
    });
    expect(await dispatch(plain.table, drainMessage, '')).toEqual({ ok: false, error: { code: 'ERR_INTERNAL', message: 'boom' } });
    const odd = handlers(() => {
      throw 'just a string';
    });
    expect(await dispatch(odd.table, drainMessage, '')).toEqual({ ok: false, error: { code: 'ERR_INTERNAL', message: 'just a string' } });
  });

  it('keeps the errno of a failed system call, and the code survives the way back', async () => {
    const native = Object.assign(new Error('bind 127.0.0.1:80: permission denied'), { code: 'EACCES' });
    const coded = handlers(() => {
      throw new BatonError('ERR_LISTENER', 'cannot bind 127.0.0.1:80', { cause: native });
    });
    const reply = await dispatch(coded.table, drainMessage, '');
    expect(reply).toEqual({ ok: false, error: { code: 'ERR_LISTENER', message: 'cannot bind 127.0.0.1:80', errno: 'EACCES' } });
    expect(errorBody(native)).toEqual({ code: 'ERR_INTERNAL', message: native.message, errno: 'EACCES' });
    const back = replyError((reply as { error: ErrorBody }).error);
    expect(back).toBeInstanceOf(BatonError);
    expect(back).toMatchObject({ code: 'ERR_LISTENER', errno: 'EACCES', message: 'cannot bind 127.0.0.1:80' });
    // A code from the wire that is not one of Baton's does not pass as one.
    expect(replyError({ code: 'ERR_MADE_UP' as never, message: 'x' }).code).toBe('ERR_PROTOCOL');
  });
});

describe('Correlator', () => {
  it('reply() is the ack of a message: its seq in `ack`, a fresh seq of its own', () => {
    const c = new Correlator();
    c.stamp<SupervisorMessage>({ type: 'drain', deadline: 5 });
    expect(c.reply<SupervisorMessage>(7, { ok: true, n: 1 })).toEqual({ type: 'ack', ack: 7, ok: true, n: 1, baton: PROTOCOL_VERSION, seq: 2 });
  });

  it('stamps the protocol version and increasing sequence numbers', () => {
    const c = new Correlator();
    const a = c.stamp<SupervisorMessage>({ type: 'drain', deadline: 5 });
    const b = c.stamp<SupervisorMessage>({ type: 'ack', ack: 1, ok: true });
    expect(a).toEqual({ type: 'drain', deadline: 5, baton: PROTOCOL_VERSION, seq: 1 });
    expect(b).toMatchObject({ baton: PROTOCOL_VERSION, seq: 2 });
  });

  it('settles the wait for an ack with its reply, once', async () => {
    const c = new Correlator();
    const first = c.expect(1);
    const second = c.expect(2);
    const reply: ReplyBody = { ok: true, fds: 1 };
    expect(c.settle(2, { ok: false, error: { code: 'ERR_LISTENER', message: 'no' } })).toBe(true);
    expect(c.settle(1, reply)).toBe(true);
    expect(c.settle(1, reply)).toBe(false);
    expect(c.settle(99, reply)).toBe(false);
    await expect(first).resolves.toBe(reply);
    await expect(second).resolves.toMatchObject({ ok: false });
  });

  it('failAll rejects every pending wait and forgets them', async () => {
    const c = new Correlator();
    const waits = [c.expect(1), c.expect(2)];
    const err = new Error('channel closed');
    c.failAll(err);
    for (const w of waits) await expect(w).rejects.toBe(err);
    expect(c.settle(1, { ok: true })).toBe(false);
  });
});

describe('isEnvelope', () => {
  it('accepts protocol messages of any version', () => {
    expect(isEnvelope(drainMessage)).toBe(true);
    expect(isEnvelope({ baton: 7, seq: 0, type: 'future' })).toBe(true);
  });

  it("rejects an app's own messages and other values", () => {
    for (const value of [null, undefined, 'ready', 42, [], { type: 'ready' }, { baton: '1', seq: 1, type: 'x' }, { baton: 1, type: 'x' }, { baton: 1, seq: 1 }, { baton: 1, seq: 1, type: 3 }]) {
      expect(isEnvelope(value), JSON.stringify(value)).toBe(false);
    }
  });
});

describe('BatonError', () => {
  it('is recognised across two loaded copies of the module (a brand, not the class identity)', async () => {
    // A second instance of the module, as a second installed copy of the package would load.
    const copy = '../../shared/errors.ts?copy=2';
    const other = (await import(/* @vite-ignore */ copy)) as typeof import('../../shared/errors.ts');
    expect(other.BatonError).not.toBe(BatonError);
    const theirs = new other.BatonError('ERR_CONFIG', 'from the other copy');
    expect(theirs).toBeInstanceOf(BatonError);
    expect(new BatonError('ERR_CONFIG', 'ours')).toBeInstanceOf(other.BatonError);
    expect(new Error('plain')).not.toBeInstanceOf(BatonError);
    expect(Object.assign(new Error('lookalike'), { code: 'ERR_CONFIG' })).not.toBeInstanceOf(BatonError);
  });
});

describe('hotRestartCompatibility', () => {
  it('names the protocol, the hand-over state and the stats layout in one string', async () => {
    const { hotRestartCompatibility } = await import('../../shared/hot-restart.ts');
    expect(hotRestartCompatibility()).toBe(`baton.p${PROTOCOL_VERSION}.h${HANDOVER_VERSION}.stats2.w16.g16.s4096.c16384.a262144.cell8`);
    expect(hotRestartCompatibility({ writers: 4 })).not.toBe(hotRestartCompatibility());
  });
});
