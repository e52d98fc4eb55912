import type { Outgoing, ReplyBody, SupervisorMessage } from '../../shared/protocol.ts';

/** What the canary needs of a generation (supervisor/core's Generation is one). */
export interface CanaryGeneration {
  readonly id: number;
  readonly pid: number;
  readonly sdk: boolean;
  readonly state: string;
  readonly connections: number | null;
  /** When it was started (the supervisor's clock). */
  readonly startedAt: number;
  /** Worker processes (1 when absent); `request` takes the slot. */
  readonly size?: number;
  request(body: Outgoing<SupervisorMessage>, timeoutMs: number, slot?: number): Promise<ReplyBody>;
  drain(reason: string): void;
  kill(): void;
}

/** Sends `body` to every worker of `g`; resolves with their replies (a failed one as its error reply). */
export function everyWorker(g: CanaryGeneration, body: Outgoing<SupervisorMessage>, timeoutMs: number): Promise<ReplyBody[]> {
  return Promise.all(
    Array.from({ length: g.size ?? 1 }, (_, slot) =>
      g.request(body, timeoutMs, slot).catch((err: Error): ReplyBody => ({ ok: false, error: { code: 'ERR_TIMEOUT', message: err.message } })),
    ),
  );
}
