/**
 * The TLS session ticket key shared by every generation, so a session made with one resumes on
 * the next after a reload. Kept in this process's memory only — never on disk, never in an
 * environment — and handed out over each generation's IPC channel on request. A new key is made
 * when one is asked for and the current one is `rotateEvery` old; generations ask again then.
 */
/** How early a request counts as due: generations' timers fire a little apart. */
const GRACE_MS = 1000;
/** Bounds on what a generation may ask for, so a bad value cannot spin or pin a key forever. */
const MIN_ROTATE_MS = 10_000;
const MAX_ROTATE_MS = 7 * 86_400_000;

export class TicketKeys {
  private key: Buffer | undefined;
  private expiresAt = 0;
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  /** The current key (base64) and its expiry, rotated first when it is due. */
  current(rotateEvery: number): { key: string; expiresAt: number } {
    const now = this.now();
    if (!this.key || now >= this.expiresAt - GRACE_MS) {
      const every = Math.min(MAX_ROTATE_MS, Math.max(MIN_ROTATE_MS, Number.isFinite(rotateEvery) ? rotateEvery : MAX_ROTATE_MS));
      // node:crypto is loaded by the first generation that asks (a TLS proxy), not by every supervisor (~3 MiB).
      this.key = process.getBuiltinModule('node:crypto').randomBytes(48);
      this.expiresAt = now + every;
    }
    return { key: this.key.toString('base64'), expiresAt: this.expiresAt };
  }
}
