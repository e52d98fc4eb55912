import fs from 'node:fs';
import path from 'node:path';
import { BatonError } from '../../shared/errors.ts';
import type { ReplyBody } from '../../shared/protocol.ts';
import type { Config } from '../config/config.ts';
import type { Generation } from './generation.ts';
import { controlSocketPath } from '../os/paths.ts';

/** A heap snapshot or profile written by a generation. */
export interface ProfileResult {
  generation: number;
  path: string;
  bytes: number;
  /** A heap snapshot's: how long the generation was paused writing it. */
  pauseMs?: number;
}

/** Asks `g` to release memory (GC, then malloc_trim); the reply says how much went. */
export async function releaseMemory(g: Generation): Promise<ReplyBody & { released?: number }> {
  const reply = await g.request({ type: 'release-memory' }, 30_000);
  if (!reply.ok) return { ok: false, error: reply.error };
  const { type: _type, ack: _ack, baton: _baton, seq: _seq, ...body } = reply as Record<string, unknown>;
  return { ...body, ok: true, generation: g.id };
}

/** Has `g` write a heap snapshot into `dir`; resolves with its path. */
export async function heapSnapshot(g: Generation, dir: string, onDrain = false, waitMs = 120_000): Promise<ProfileResult> {
  return profileResult(g.id, await g.request({ type: 'heap-snapshot', dir, ...(onDrain ? { onDrain } : {}) }, waitMs));
}

/** Throws ERR_USAGE unless `seconds` is a profile length Baton accepts. */
export function checkProfileSeconds(seconds: number): void {
  if (!(seconds > 0 && seconds <= 3600)) throw new BatonError('ERR_USAGE', `--seconds must be between 0 and 3600, not ${seconds}`);
}

/** Has `g` record a sampling heap profile for `seconds` into `dir`; resolves with its path. */
export async function heapProfile(g: Generation, dir: string, seconds: number): Promise<ProfileResult> {
  checkProfileSeconds(seconds);
  return profileResult(g.id, await g.request({ type: 'heap-profile', dir, seconds }, seconds * 1000 + 60_000));
}

/** Has `g` record a CPU profile for `seconds` into `dir`; resolves with its path. */
export async function cpuProfile(g: Generation, dir: string, seconds: number): Promise<ProfileResult> {
  checkProfileSeconds(seconds);
  return profileResult(g.id, await g.request({ type: 'cpu-profile', dir, seconds }, seconds * 1000 + 60_000));
}

/** Where profiles go: `memory.profile-dir`, else `profiles/` beside the control socket (created 0700). */
export function profileDir(config: Config): string {
  const dir = config.memory?.profileDir ?? path.join(path.dirname(controlSocketPath(config.name, config.controlSocket)), 'profiles');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function profileResult(generation: number, reply: ReplyBody): ProfileResult {
  if (!reply.ok) throw new BatonError('ERR_CONTROL', `${reply.error.code}: generation ${generation}: ${reply.error.message}`);
  return { generation, path: String(reply.path), bytes: Number(reply.bytes), ...(Number.isFinite(reply.pauseMs) ? { pauseMs: Number(reply.pauseMs) } : {}) };
}

/** The generation a request is for: `generation` among `live`, or the active one; throws ERR_USAGE when there is none. */
export function requestTarget(live: Generation[], active: Generation | undefined, generation?: number): Generation {
  const g = generation === undefined ? active : live.find((x) => x.id === generation);
  if (!g) {
    throw new BatonError(
      'ERR_USAGE',
      generation === undefined ? 'no generation is active' : `no live generation ${generation} (live: ${live.map((x) => x.id).join(', ') || 'none'})`,
    );
  }
  return g;
}
