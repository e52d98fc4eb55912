/**
 * `baton heap-snapshot --retire`: a heap snapshot that no client waits on. The generation is
 * first asked to write a snapshot *once it has drained* (the request waits in the child, on its
 * drain); then the supervisor's own reload starts a replacement with the config in force, which
 * takes over the sockets; the old generation stops accepting, finishes its open requests, and only
 * then pauses for the snapshot before it exits. `--compare` also snapshots the new generation
 * (that one does pause while serving) for a diff in DevTools.
 */
import type { ProfileResult } from '../core/generation-requests.ts';

export interface RetireSteps {
  /** Asks the generation for a snapshot when it drains; resolves once written. */
  snapshotOnDrain(): Promise<ProfileResult>;
  /** The supervisor's reload; resolves with the new active generation's number. */
  reload(): Promise<number>;
  /** A snapshot of the new generation, in place. */
  snapshotNew(generation: number): Promise<ProfileResult>;
}

export interface RetireResult extends ProfileResult {
  replacement: number;
  compare?: ProfileResult;
}

export async function retireSnapshot(steps: RetireSteps, compare: boolean): Promise<RetireResult> {
  const pending = steps.snapshotOnDrain();
  // A failed reload leaves the old generation serving; its snapshot then comes at its eventual drain.
  pending.catch(() => {});
  const replacement = await steps.reload();
  const old = await pending;
  if (!compare) return { ...old, replacement };
  return { ...old, replacement, compare: await steps.snapshotNew(replacement) };
}
