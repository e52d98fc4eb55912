/** Endpoint choice: round-robin, or least-request (the less loaded of two random picks, as Envoy does). */

export interface Balanced {
  healthy: boolean;
  /** Requests in flight on this endpoint. */
  active: number;
}

export type LbPolicy = 'round_robin' | 'least_request';

export class LoadBalancer<E extends Balanced> {
  private next = 0;
  private readonly policyName: LbPolicy;
  private readonly endpoints: readonly E[];

  constructor(policy: LbPolicy, endpoints: readonly E[]) {
    this.policyName = policy;
    this.endpoints = endpoints;
  }

  get policy(): LbPolicy {
    return this.policyName;
  }

  /** A healthy endpoint other than `avoid` when there is one; undefined when none is healthy. */
  pick(avoid?: E): E | undefined {
    const all = this.endpoints;
    const n = all.length;
    if (this.policyName === 'round_robin') {
      let fallback: E | undefined;
      for (let i = 0; i < n; i++) {
        const e = all[(this.next + i) % n]!;
        if (!e.healthy) continue;
        if (e === avoid) {
          fallback = e;
          continue;
        }
        this.next = (this.next + i + 1) % n;
        return e;
      }
      return fallback;
    }
    const healthy = all.filter((e) => e.healthy && e !== avoid);
    if (healthy.length === 0) return avoid?.healthy ? avoid : undefined;
    if (healthy.length === 1) return healthy[0];
    const a = healthy[Math.floor(Math.random() * healthy.length)]!;
    let b = healthy[Math.floor(Math.random() * (healthy.length - 1))]!;
    if (b === a) b = healthy[healthy.length - 1]!;
    return b.active < a.active ? b : a;
  }
}
