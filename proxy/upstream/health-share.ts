/**
 * Active health checks across a generation's workers. Every worker probes each endpoint once as
 * it starts, so none serves a dead one; after that worker 0 alone keeps probing and shares every
 * endpoint's state with the others through the SDK's shared values (one flag per endpoint), so N
 * workers probe each endpoint once per interval, agree with each other, and the cluster's healthy
 * gauge (summed over workers) is reported once. A worker 0 restarted in its slot takes over where
 * its predecessor was; the others keep the last state shared until it does.
 */
import type { Logger } from 'pino';
import { generation, shared } from '../../child/index.ts';
import { SHARED_MAX_STRING } from '../../shared/shared-value.ts';
import type { Cluster } from './cluster.ts';
import { HealthChecker } from './health-check.ts';

const KEY = 'proxy.health';

export interface HealthChecks {
  stop(): void;
}

/** Starts the health checks of `clusters` (the first round done when this resolves); `reporter`: this worker reports the gauges. */
export async function startHealthChecks(clusters: Iterable<Cluster>, reporter: boolean, log: Logger): Promise<HealthChecks> {
  const checked = [...clusters].filter((c) => c.spec.health_check);
  const hosts = checked.flatMap((c) => c.hosts);
  // Past what one shared value holds, every worker checks for itself (and each reports its gauge).
  const alone = hosts.length > SHARED_MAX_STRING;
  const leads = generation().worker === 0 || alone;
  // One share on its way at a time, each with the state as it is when sent: a burst of changes
  // (every endpoint down at once) is one or two shares, never a queue that runs into the bound.
  let publishing = false;
  let again = false;
  const publish = (): void => {
    if (!leads || alone || hosts.length === 0) return;
    if (publishing) {
      again = true;
      return;
    }
    publishing = true;
    void shared
      .set(KEY, hosts.map((h) => (h.healthy ? '1' : '0')).join(''))
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
        { reportsGauge: reporter || alone },
      ),
  );
  await Promise.all(checkers.map((c) => c.start(leads)));
  if (leads) {
    publish();
    return { stop: () => checkers.forEach((c) => c.stop()) };
  }
  const adopt = (value: unknown): void => {
    if (typeof value !== 'string' || value.length !== hosts.length) return;
    let at = 0;
    for (const checker of checkers) {
      const n = checker.hostCount;
      checker.adopt([...value.slice(at, at + n)].map((flag) => flag === '1'));
      at += n;
    }
  };
  adopt(shared.get(KEY));
  const off = shared.onChange((key, value) => {
    if (key === KEY) adopt(value);
  });
  return {
    stop: () => {
      off();
      checkers.forEach((c) => c.stop());
    },
  };
}
