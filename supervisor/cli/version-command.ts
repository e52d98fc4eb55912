import { packageVersion } from '../../shared/package-root.ts';
import { PROTOCOL_VERSION } from '../../shared/protocol.ts';
import { hotRestartVersion } from '../../shared/stats/index.ts';
import { hotRestartCompatibility } from '../../shared/hot-restart.ts';

/** `baton version [--hot-restart]`: the version line, or the stats hot-restart compatibility string. */
export function version(hotRestart: boolean): number {
  if (hotRestart) {
    process.stdout.write(`${hotRestartCompatibility()}\n`);
    return 0;
  }
  process.stdout.write(`baton ${packageVersion()} (protocol ${PROTOCOL_VERSION}, stats ${hotRestartVersion()})\n`);
  return 0;
}
