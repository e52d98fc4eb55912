import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { MemoryMonitor } from '../memory/monitor.ts';
import type { Os } from '../os/os.ts';
import type { FdStore, Listener } from '../sockets/fd-store.ts';
import { generationOptions } from './generation-options.ts';
import { Generation } from './generation.ts';
import type { StatsSink } from './stats-sink.ts';
import type { TicketKeys } from './ticket-keys.ts';

export interface LaunchDeps {
  os: Os;
  log: Logger;
  store: FdStore;
  sink: StatsSink;
  memory: MemoryMonitor | undefined;
  /** The TLS session ticket key every generation shares. */
  ticketKeys?: TicketKeys;
  /** A reload a generation asked for. */
  reload?(): Promise<number>;
}

/**
 * Starts generation `id` of `config`, worker i on `slots[i]`, and keeps the stats segment's table
 * (one writer per worker) and the store's users up to date as its workers start, change and exit.
 */
export function launchGeneration(config: Config, slots: Listener[][], id: number, deps: LaunchDeps, initial?: number): Generation {
  const memoryInterval = config.memory && config.memory.interval > 0 && deps.memory ? config.memory.interval : undefined;
  const options = generationOptions(config, slots, id, {
    os: deps.os,
    log: deps.log,
    store: deps.store,
    sink: deps.sink,
    ...(deps.ticketKeys ? { ticketKeys: deps.ticketKeys } : {}),
    ...(deps.reload ? { reload: deps.reload } : {}),
    ...(memoryInterval !== undefined ? { memoryInterval } : {}),
  }, initial);
  deps.store.retain(id, [...new Set(slots.flat())]);
  const generation = new Generation(options, deps.os, deps.log);
  const record = (w: Generation['workers'][number]): void => deps.sink.update(id, w.pid, w.state, w.startedAt, w.worker);
  for (const w of generation.workers) record(w);
  generation.on('worker-start', record);
  generation.on('worker-state', record);
  generation.on('worker-exit', (w) => {
    // A slot restarted meanwhile has a writer of its own under the same key: only the current worker's is freed.
    if (generation.workers[w.worker] === w) deps.sink.detach(id, w.worker);
  });
  // Every worker exited and none will restart: nothing can write the stats labelled with this
  // generation any more, so they can go (a slot restarted within it kept them until now).
  generation.once('exit', () => deps.sink.retireGeneration(id));
  deps.memory?.track(id, generation.pid);
  deps.sink.count('generations_started');
  return generation;
}
