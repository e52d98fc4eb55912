// The health lead's rules with a hand-driven clock: who probes when worker 0 falls silent, and
// who gives it back when a lower worker is heard again. The real-process side is in proxy-workers.test.ts.
import { describe, expect, it } from 'vitest';
import { HealthLead, LEAD_TRANSITIONS, SILENT_BEATS, type LeadClock, type LeadState } from '../../../proxy/upstream/health-lead.ts';

/** Timers that fire only when the test moves time on. */
function fakeClock(): LeadClock & { advance(ms: number): void; pending(): number } {
  let now = 0;
  let next = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    setTimeout(fn, ms) {
      const id = next++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = until;
    },
    pending: () => timers.size,
  };
}

function leadOf(worker: number, beat = 100): { lead: HealthLead; changes: LeadState[]; clock: ReturnType<typeof fakeClock> } {
  const clock = fakeClock();
  const changes: LeadState[] = [];
  const lead = new HealthLead(worker, beat, (s) => changes.push(s), clock);
  return { lead, changes, clock };
}

describe('HealthLead', () => {
  it('worker 0 leads from the start, waits for nothing and never follows a higher worker', () => {
    const { lead, changes, clock } = leadOf(0);
    expect(lead.state).toBe('leading');
    expect(clock.pending()).toBe(0);
    lead.heard(1);
    lead.heard(0);
    clock.advance(10_000);
    expect(lead.state).toBe('leading');
    expect(changes).toEqual([]);
  });

  it('a follower keeps following while a lower worker beats, and leads after (3 + its index) silent beats', () => {
    const { lead, changes, clock } = leadOf(1);
    expect(lead.staleAfter).toBe((SILENT_BEATS + 1) * 100);
    expect(lead.state).toBe('following');
    for (let i = 0; i < 20; i++) {
      clock.advance(100);
      lead.heard(0);
    }
    expect(changes).toEqual([]);
    clock.advance(399);
    expect(lead.state).toBe('following');
    clock.advance(1);
    expect(lead.state).toBe('leading');
    expect(changes).toEqual(['leading']);
  });

  it('its own echoes and higher workers do not keep a follower from taking over', () => {
    const { lead, clock } = leadOf(1);
    for (let i = 0; i < 4; i++) {
      clock.advance(100);
      lead.heard(1);
      lead.heard(2);
    }
    expect(lead.state).toBe('leading');
  });

  it('an acting lead steps down at the first beat of a lower worker, and takes over again after silence', () => {
    const { lead, changes, clock } = leadOf(2);
    clock.advance(500);
    expect(lead.state).toBe('leading');
    lead.heard(0);
    expect(lead.state).toBe('following');
    clock.advance(499);
    lead.heard(1);
    clock.advance(499);
    expect(lead.state).toBe('following');
    clock.advance(1);
    expect(changes).toEqual(['leading', 'following', 'leading']);
  });

  it('the lowest live follower takes over first, and its beats keep the higher ones following', () => {
    const one = leadOf(1);
    const two = leadOf(2);
    // Both clocks move together; worker 1's beats reach worker 2 every 100 ms once it leads.
    for (let t = 0; t < 3000; t += 100) {
      one.clock.advance(100);
      two.clock.advance(100);
      if (one.lead.state === 'leading') two.lead.heard(1);
    }
    expect(one.lead.state).toBe('leading');
    expect(two.changes).toEqual([]);
  });

  it('stop() ends the watchdog: nothing changes afterwards', () => {
    const { lead, changes, clock } = leadOf(1);
    lead.stop();
    expect(clock.pending()).toBe(0);
    clock.advance(10_000);
    lead.heard(0);
    expect(changes).toEqual([]);
  });

  it('the transition table is the whole machine: a leader has no silence to act on', () => {
    expect(LEAD_TRANSITIONS.leading.silence).toBeUndefined();
    expect(LEAD_TRANSITIONS.following.silence).toBe('leading');
    expect(LEAD_TRANSITIONS.leading['heard-lower']).toBe('following');
  });
});
