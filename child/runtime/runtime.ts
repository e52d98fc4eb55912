import type net from 'node:net';
import type { SharedValue } from '../../shared/shared-value.ts';
import type { Stats } from '../../shared/stats/index.ts';

/** What a generation knows about itself. */
export interface GenerationInfo {
  /** False when the program runs without Baton (plain `node app.js`). */
  supervised: boolean;
  /** 1 for the first generation; 0 when unsupervised. */
  generation: number;
  /** This process's slot among its generation's workers (`workers: N`): 0..N-1; 0 when unsupervised. */
  worker: number;
  instance: string;
  /** Epoch milliseconds. */
  startedAt: number;
}

/** A listener to obtain: by the name given in Baton's config, or by address (or both). */
export interface ListenerRequest {
  name?: string;
  address?: string;
}

/** Where to listen: an inherited or handed-over descriptor, or an address to bind. */
export type ListenPlace = { fd: number } | net.ListenOptions;

/** A 48-byte session ticket key (for tls.Server#setTicketKeys) and the epoch ms it is replaced at. */
export interface TicketKey {
  key: Buffer;
  expiresAt: number;
}

/** What the SDK needs from its environment; the supervised and standalone runtimes implement it. */
export interface Runtime {
  info(): GenerationInfo;
  /** Where to listen for `request`: an inherited or handed-over descriptor, or an address to bind. */
  resolve(request: ListenerRequest): Promise<ListenPlace>;
  /** Reports that this generation is ready to take over. */
  ready(): void;
  reportConnections(open: number): void;
  /** Reports that draining finished; the process exits next. */
  drained(): void;
  /** This process's view of the stats (opened on first use). */
  stats(): Stats;
  /** The TLS session ticket key every generation shares, and when it expires (epoch ms). */
  ticketKey(rotateEvery: number): Promise<TicketKey>;
  /** Asks for a reload of the whole program; resolves with the new generation's number. */
  requestReload(reason: string): Promise<number>;
  /** Sets `key` (checked) for every worker of this generation; resolves once this process holds it, through the `shared` hook. */
  share(key: string, value: SharedValue): Promise<void>;
  /** Installs the hooks the runtime calls: drain (stop accepting, finish) and terminate (cut and exit), and the optional ones below. */
  start(hooks: RuntimeHooks): void;
  /** Ends the process once drained or terminated. @default process.exit */
  exit?(code: number): void;
}

/** What a runtime asks of the SDK on its supervisor's behalf. */
export interface RuntimeHooks {
  /** `deadline`: when Baton cuts what is left (epoch ms), if it said. */
  drain(deadline?: number): void;
  terminate(): void;
  /** Stop accepting, keep running (returns how many servers stopped). */
  park?(): number;
  /** Accept again, on descriptors `acquire` obtains by address; resolves with how many servers listen again. */
  unpark?(acquire: (address: string) => Promise<number>): Promise<number>;
  /** Close idle connections now and busy ones after their response; returns the open connections. */
  hurry?(): number;
  /** A shared value arrived (set by any worker of the generation, this one included): hold it. */
  shared?(key: string, value: SharedValue): void;
}
