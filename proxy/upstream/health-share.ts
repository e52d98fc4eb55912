/**
 * Active health checks across a generation's workers. Every worker probes each endpoint once as
 * it starts, so none serves a dead one; after that one worker, the lead (health-lead.ts: worker 0
 * while it is heard from), keeps probing and shares every endpoint's state with the others through
 * the SDK's shared values (one flag per endpoint, behind the lead's index), so N workers probe each
 * endpoint once per interval, agree with each other, and the cluster's healthy gauge (summed over
 * workers) is reported once. The lead shares its state every interval even when nothing changed:
 * that is its heartbeat, and a worker that stops hearing it — worker 0 dead in its restart
 * backoff, or wedged — takes over the probing and the gauges until it is heard again.
 */
import type { Logger } from 'pino';
import { generation, shared } from '../../child/index.ts';
import { SHARED_MAX_STRING } from '../../shared/shared-value.ts';
import type { Cluster } from './cluster.ts';
import { HealthChecker } from './health-check.ts';
import { HealthLead, type LeadState } from './health-lead.ts';

const KEY = 'proxy.health';
/** `<worker>:<one flag per endpoint>`; anything else a sibling could send is ignored. */
const SHARE = /^(\d{1,5}):([01]*)$/;
/** The longest `<worker>:` SHARE accepts. */
const PREFIX_MAX = 6;

export interface HealthChecks {
  stop(): void;
}

/** Starts the health checks of `clusters` (the first round done when this resolves); stop() before the generation drains. */
export async function startHealthChecks(clusters: Iterable<Cluster>, log: Logger): Promise<HealthChecks> {
  const all = [...clusters];
  const checked = all.filter((c) => c.spec.health_check);
  const unchecked = all.filter((c) => !c.spec.health_check);
  const hosts = checked.flatMap((c) => c.hosts);
  const me = generation().worker;
  // Past what one shared value holds, every worker checks for itself (and each reports its gauge);
  // the lead still beats, for the gauges of the clusters nobody checks.
  // Every worker must agree on it, so the bound counts the longest prefix SHARE accepts, not its own.
  const alone = hosts.length + PREFIX_MAX > SHARED_MAX_STRING;
  const beatMs = Math.min(...checked.map((c) => c.spec.health_check?.interval ?? Infinity), 5_000);

  // One share on its way at a time, each with the state as it is when sent: a burst of changes
  // (every endpoint down at once) is one or two shares, never a queue that runs into the bound.
  let publishing = false;
  let again = false;
  let beat: NodeJS.Timeout | undefined;
  const publish = (): void => {
    if (lead.state !== 'leading') return;
    if (publishing) {
      again = true;
      return;
    }
    publishing = true;
    const flags = alone ? '' : hosts.map((h) => (h.healthy ? '1' : '0')).join('');
    void shared
      .set(KEY, `${me}:${flags}`)
      .catch(() => {})
      .finally(() => {
        publishing = false;
        if (again) {
          again = false;
          publish();
        }
      });
  };
  const checkers = checked.map(
    (cluster) =>
      new HealthChecker(
        cluster,
        cluster.spec.health_check as NonNullable<Cluster['spec']['health_check']>,
        (e) => {
          // `event` names the record for programs (tests, log pipelines); the message may be reworded.
          log.info({ event: 'endpoint-health', ...e }, `endpoint ${e.endpoint} of cluster ${e.cluster} is ${e.healthy ? 'healthy' : 'unhealthy'}: ${e.reason}`);
          publish();
        },
        { reportsGauge: alone || me === 0 },
      ),
  );
  const become = (state: LeadState): void => {
    const leading = state === 'leading';
    if (me !== 0) log.info({ event: 'health-lead', leading }, leading ? `worker ${me} probes the upstreams: no lower worker heard for ${lead.staleAfter} ms` : `worker ${me} leaves the probing to a lower worker`);
    for (const c of unchecked) c.stats.hcHealthy.set(leading ? c.hosts.length : 0);
    clearInterval(beat);
    beat = undefined;
    if (!alone) {
      for (const checker of checkers) {
        checker.setReportsGauge(leading);
        if (leading) checker.keepChecking();
        else checker.stopChecking();
      }
    }
    if (leading) {
      beat = setInterval(publish, beatMs).unref();
      publish();
    }
  };
  const adopt = (value: unknown): void => {
    const share = typeof value === 'string' ? SHARE.exec(value) : null;
    if (!share) return;
    const from = Number(share[1]);
    if (from === me) return;
    lead.heard(from);
    const flags = share[2] as string;
    // A higher worker's view is still news to a follower; a lead keeps its own.
    if (alone || lead.state === 'leading' || flags.length !== hosts.length) return;
    let at = 0;
    for (const checker of checkers) {
      const n = checker.hostCount;
      checker.adopt([...flags.slice(at, at + n)].map((flag) => flag === '1'));
      at += n;
    }
  };

  const lead = new HealthLead(me, beatMs, become);
  // Only worker 0 starts as the lead (no change of state to announce it); a follower that takes
  // over during its first round has been through become() already.
  const first = lead.state;
  await Promise.all(checkers.map((c) => c.start(alone || first === 'leading')));
  if (first === 'leading') become('leading');
  else adopt(shared.get(KEY));
  const off = shared.onChange((key, value) => {
    if (key === KEY) adopt(value);
  });
  return {
    stop: () => {
      off();
      lead.stop();
      clearInterval(beat);
      checkers.forEach((c) => c.stop());
    },
  };
}
