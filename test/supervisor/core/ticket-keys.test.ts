import { describe, expect, it } from 'vitest';
import { TicketKeys } from '../../../supervisor/core/ticket-keys.ts';

describe('TicketKeys', () => {
  it('hands every asker the same 48-byte key until it is due, then a new one', () => {
    let now = 1_000_000;
    const keys = new TicketKeys(() => now);
    const first = keys.current(60_000);
    expect(Buffer.from(first.key, 'base64')).toHaveLength(48);
    expect(first.expiresAt).toBe(now + 60_000);
    now += 30_000;
    expect(keys.current(60_000)).toEqual(first);
    // A generation's timer fires a little early: within the grace the key is due.
    now = first.expiresAt - 500;
    const second = keys.current(60_000);
    expect(second.key).not.toBe(first.key);
    expect(second.expiresAt).toBe(now + 60_000);
  });

  it('bounds the rotation a generation asks for', () => {
    const now = 0;
    const keys = new TicketKeys(() => now);
    expect(keys.current(1).expiresAt).toBe(10_000);
    expect(new TicketKeys(() => now).current(Number.NaN).expiresAt).toBe(7 * 86_400_000);
  });
});
