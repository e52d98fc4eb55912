import { describe, expect, it } from 'vitest';
import { BatonError } from '../../shared/errors.ts';
import {
  Correlator,
  dispatch,
  isEnvelope,
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

  it('refuses another protocol version with ERR_PROTOCOL_VERSION', async () => {
    const { table, seen } = handlers(() => ({ ok: true }));
    expect(await dispatch(table, { ...drainMessage, baton: 2 }, '')).toEqual({
      ok: false,
      error: { code: 'ERR_PROTOCOL_VERSION', message: `protocol version 2 is not supported: expected ${PROTOCOL_VERSION}` },
    });
    expect(seen).toEqual([]);
  });

  it("turns a throwing handler into an error reply carrying the error's code", async () => {
    const coded = handlers(() => {
      throw new BatonError('ERR_LISTENER', 'no such listener');
    });
    expect(await dispatch(coded.table, drainMessage, '')).toEqual({ ok: false, error: { code: 'ERR_LISTENER', message: 'no such listener' } });
    const plain = handlers(async () => {
      throw new Error('boom');
    });
    expect(await dispatch(plain.table, drainMessage, '')).toEqual({ ok: false, error: { code: 'ERR_PROTOCOL', message: 'boom' } });
    const odd = handlers(() => {
      throw 'just a string';
    });
    expect(await dispatch(odd.table, drainMessage, '')).toEqual({ ok: false, error: { code: 'ERR_PROTOCOL', message: 'just a string' } });
  });
});

describe('Correlator', () => {
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
