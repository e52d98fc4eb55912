/**
 * The standby preload (`standby: true`; supervisor/os/standby-pool.ts), run by `node --import`
 * in a process the supervisor boots ahead of a generation. It loads what every generation loads,
 * says `standby` on the IPC channel, and holds the app's import back until `standby-go` hands it
 * the generation's own environment. Nothing here reads that environment: it does not exist yet.
 *
 * `baton dev`'s first generation, booted before the supervisor's modules load, is handed its
 * guessed environment at boot instead (WAKE) and wakes itself: a wake-up message could not be
 * sent in time, as the supervisor's process runs no event loop turn while its modules load.
 */
import { performance } from 'node:perf_hooks';
import { PROTOCOL_VERSION, isEnvelope } from '../shared/protocol.ts';
import { hideUndiciExports } from './start/lean-http.ts';

/** Where the wake-up is marked for the reload's breakdown (child/start/start-timing.ts reads it). */
export const WOKEN = Symbol.for('baton.standby.woken');

/** The variable that hands a standby its wake-up environment at boot (STANDBY_WAKE of supervisor/os/standby-pool.ts). */
const WAKE = 'BATON_STANDBY_WAKE';
// Read and removed before anything else runs: the app must not see it.
const wakeAtBoot = process.env[WAKE];
delete process.env[WAKE];

// The ES namespace of node:http an app's `import http from 'node:http'` gets, built ahead, without
// the getters that load Node's undici (child/start/lean-http.ts; the environment that may keep them is the
// spawn's, but for the per-generation variables handed on waking). The SDK is the same module an
// app importing `baton-supervisor/child` gets, so its import is then a cache hit.
const sibling = (name: string): string => new URL(`./${name}${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url).href;
hideUndiciExports();
await import('node:http');
await import(sibling('index'));
// What the SDK loads when a generation first counts (child/stats/stats-module.ts): the stats modules and
// the native addon, about 20 ms that would otherwise follow the wake-up in an app that counts at
// import. Loaded, not opened: the segment to open is named in the environment handed over on waking.
// Not by one that wakes itself: its wake-up would wait for them, and a request is counted only once
// answered (child/stats/request-stats.ts), so the first answer does not.
if (wakeAtBoot === undefined) {
  const lazy = (await import(sibling('stats/stats-module'))) as typeof import('./stats/stats-module.ts');
  lazy.segments();
  lazy.promNames();
}

/** Takes the generation's own variables; the app's import follows. */
function wake(env: unknown): void {
  if (typeof env !== 'object' || env === null) return;
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') process.env[k] = v;
  // baton-exec sets it only where LISTEN_FDS was set at exec, which a standby's environment lacks.
  if (process.env.LISTEN_FDS !== undefined) process.env.LISTEN_PID = String(process.pid);
  (globalThis as Record<symbol, unknown>)[WOKEN] = performance.now();
}

/** The environment handed over at boot; exits (the spawn then starts afresh) when it is not a JSON object. */
function parseWake(text: string): unknown {
  try {
    const env: unknown = JSON.parse(text);
    if (typeof env === 'object' && env !== null && !Array.isArray(env)) return env;
  } catch {
    // reported below
  }
  process.stderr.write(`baton standby: ${WAKE} is not a JSON object of variables: ${text.slice(0, 80)}\n`);
  return process.exit(1);
}

if (wakeAtBoot !== undefined) {
  // Woken now, saying nothing: the supervisor holds what the app says until its spawn takes this process.
  wake(parseWake(wakeAtBoot));
} else if (typeof process.send === 'function') {
  await new Promise<void>((resolve) => {
    // The supervisor gone while it waits: nothing will wake it (its reaper kills it too).
    const gone = (): never => process.exit(0);
    const hear = (m: unknown): void => {
      if (!isEnvelope(m) || m.type !== 'standby-go') return;
      const env = (m as { env?: unknown }).env;
      if (typeof env !== 'object' || env === null) return;
      process.off('message', hear);
      process.off('disconnect', gone);
      wake(env);
      resolve();
    };
    process.on('message', hear);
    process.on('disconnect', gone);
    process.send?.({ baton: PROTOCOL_VERSION, seq: 0, type: 'standby' });
  });
}
