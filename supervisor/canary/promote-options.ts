import type { Config } from '../config/config.ts';
import type { Os } from '../os/os.ts';
import type { Listener } from '../sockets/fd-store.ts';
import type { PromoteOptions } from './canary.ts';
import { drainLaunch } from './drain-launch.ts';

/** What a promotion under `config` is judged with: its canary block, max-draining, and the readiness HTTP probe. */
export function promoteOptions(config: Config, listeners: Listener[], os: Pick<Os, 'httpProbe'>): PromoteOptions {
  const http = config.readiness.http;
  const through = http && listeners.find((l) => l.name === (http.listener ?? config.listeners[0]?.name));
  const [command, ...args] = config.command as [string, ...string[]];
  return {
    preload: drainLaunch(config, command, args).preload,
    ...(config.canary ? { canary: config.canary } : {}),
    maxDraining: config.maxDraining ?? 3,
    ...(config.drainingMemoryBudget !== undefined ? { drainingMemoryBudget: config.drainingMemoryBudget } : {}),
    shutdownTimeout: config.shutdownTimeout,
    // During the window the previous generation is parked, so the probe reaches the new one.
    ...(http && through ? { probe: () => os.httpProbe(through.bound, http.path) } : {}),
  };
}
