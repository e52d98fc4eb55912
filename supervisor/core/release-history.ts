import path from 'node:path';
import type { Config } from '../config/config.ts';

/** Releases remembered for `baton rollback`, the serving one included. */
const KEPT = 8;

/** A release as it was launched: the config with its symlinks resolved at that moment. */
interface Release {
  /** The generation that serves (or last served) this release. */
  generation: number;
  config: Config;
}

/**
 * `config` pinned to what its paths name now: the working directory and every command argument
 * that is a path (it holds a `/`) with symlinks resolved. A deploy that switches a `current`
 * link after this leaves the pinned release pointing at the old directory, which is what a
 * rollback must run again.
 */
export function pinRelease(config: Config, realpath: ((p: string) => string | undefined) | undefined): Config {
  if (!realpath) return config;
  const cwd = realpath(config.cwd) ?? config.cwd;
  const command = config.command.map((arg) => {
    if (!arg.includes('/') || arg.startsWith('-')) return arg;
    // Resolved against the directory the generation would have started in; kept as written unless a link lies on the way.
    const written = path.resolve(config.cwd, arg);
    const resolved = realpath(written);
    return resolved !== undefined && resolved !== written ? resolved : arg;
  });
  return { ...config, cwd, command };
}

/**
 * The releases this supervisor promoted, newest last: a reload adds one, a restart or a
 * replacement for memory keeps the current one (under its new generation), and a rollback
 * drops the current one so the one before serves again — a second rollback goes back further.
 */
export class ReleaseHistory {
  private readonly releases: Release[] = [];

  /** `generation` serves: a `new` release (start, reload), the `same` one (restart, replacement) or the one `back` (rollback). */
  promoted(kind: 'new' | 'same' | 'back', generation: number, pinned: Config): void {
    const top = this.releases.at(-1);
    if (kind === 'new' || !top) {
      this.releases.push({ generation, config: pinned });
      if (this.releases.length > KEPT) this.releases.shift();
      return;
    }
    if (kind === 'back') this.releases.pop();
    const current = this.releases.at(-1);
    if (current) current.generation = generation;
    else this.releases.push({ generation, config: pinned });
  }

  /** The release a rollback would run: the one before the serving one; undefined when there is none. */
  previous(): Release | undefined {
    return this.releases.at(-2);
  }
}
