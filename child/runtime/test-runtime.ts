/**
 * `createTestRuntime()`: the runtime an app's own tests install to drive its drain path the way
 * Baton would — a real implementation of `Runtime`, like the standalone one, not a mock. Listeners
 * bind for real (an address as given, a bare name on an ephemeral loopback port), and nothing ends
 * the test process: the exit the SDK calls once drained is recorded (or handed to `options.exit`).
 */
import { parseAddress } from '../../shared/address.ts';
import type { Stats } from '../../shared/stats/index.ts';
import { randomBytes } from 'node:crypto';
import { BatonError } from '../../shared/errors.ts';
import type { GenerationInfo, ListenerRequest, ListenPlace, Runtime, RuntimeHooks, TicketKey } from './runtime.ts';
import { privateStats } from './standalone.ts';

export interface TestRuntimeOptions {
  /** The generation number `generation()` reports. @default 1 */
  generation?: number;
  /** The worker index `generation()` reports. @default 0 */
  worker?: number;
  /** Called instead of process.exit once the app has drained or was terminated. @default records the code */
  exit?: (code: number) => void;
}

/** A Runtime whose supervisor is the test: `drain()` and `terminate()` are what Baton would send. */
export interface TestRuntime extends Runtime {
  /** Asks the app to drain, as Baton does on a reload; resolves with the exit code once it has drained. */
  drain(): Promise<number>;
  /** Cuts every connection and exits, as Baton's SIGTERM at the drain deadline does. */
  terminate(): void;
  /** True once the app called ready(). */
  readonly isReady: boolean;
  /** Open connections the app last reported. */
  readonly connections: number;
  /** The code the app exited with, once it has. */
  readonly exitCode: number | undefined;
}

/** Creates a test runtime; install it with `useRuntime()` before the app calls `listen()`. */
export function createTestRuntime(options: TestRuntimeOptions = {}): TestRuntime {
  const startedAt = Date.now();
  let hooks: RuntimeHooks | undefined;
  let stats: Stats | undefined;
  let isReady = false;
  let connections = 0;
  let exitCode: number | undefined;
  let key: TicketKey | undefined;
  const exited: ((code: number) => void)[] = [];
  const started = (): RuntimeHooks => {
    if (!hooks) throw new Error('the test runtime is not installed: call useRuntime(runtime) first');
    return hooks;
  };
  return {
    info: (): GenerationInfo => ({ supervised: true, generation: options.generation ?? 1, worker: options.worker ?? 0, instance: 'test', startedAt }),
    async resolve(request: ListenerRequest): Promise<ListenPlace> {
      if (request.address === undefined) return { host: '127.0.0.1', port: 0 };
      const address = parseAddress(request.address);
      return address.kind === 'unix' ? { path: address.path } : { host: address.host, port: address.port };
    },
    ready: () => {
      isReady = true;
    },
    reportConnections: (open) => {
      connections = open;
    },
    drained: () => {
      connections = 0;
    },
    stats: () => (stats ??= privateStats()),
    // A test is the only generation: a key of its own, on the schedule asked for.
    async ticketKey(rotateEvery) {
      if (!key || Date.now() >= key.expiresAt - 1000) key = { key: randomBytes(48), expiresAt: Date.now() + rotateEvery };
      return key;
    },
    async requestReload() {
      throw new BatonError('ERR_NOT_SUPERVISED', 'cannot reload: the test runtime has no supervisor to ask');
    },
    // The test is the whole generation: a shared value is held at once.
    async share(key, value) {
      started().shared?.(key, value);
    },
    start: (h) => {
      hooks = h;
    },
    exit: (code) => {
      exitCode = code;
      options.exit?.(code);
      for (const resolve of exited.splice(0)) resolve(code);
    },
    drain() {
      const done = exitCode !== undefined ? Promise.resolve(exitCode) : new Promise<number>((resolve) => exited.push(resolve));
      started().drain();
      return done;
    },
    terminate: () => started().terminate(),
    get isReady() {
      return isReady;
    },
    get connections() {
      return connections;
    },
    get exitCode() {
      return exitCode;
    },
  };
}
