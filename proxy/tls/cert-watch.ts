/**
 * `tls.watch: true`: the active generation watches the directories of its certificate, key and
 * CA files (a renewal by certbot or cert-manager replaces them by rename, which a watch on the
 * file itself would miss), waits `debounce` for the rest of the renewal, and when the files'
 * contents differ from what it loaded asks the supervisor for a reload. The new generation
 * checks the new files like any config: a bad one fails the reload and this generation serves on.
 * The proxy watches (it knows the files); the supervisor reloads (it knows how).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { requestReload } from '../../child/index.ts';
import { fingerprint } from './certificates.ts';

export interface CertWatch {
  stop(): void;
}

/** Watches `files` (read with digest `loaded`); `reload` is the SDK's by default. */
export function watchCertificates(
  files: readonly string[],
  loaded: string,
  debounce: number,
  log: Logger,
  reload: (reason: string) => Promise<number> = requestReload,
): CertWatch {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let inFlight = false;
  /** The digest a reload was last asked for: the same files are not tried twice. */
  let tried = loaded;
  const watchers: fs.FSWatcher[] = [];
  const names = new Map<string, Set<string>>();
  for (const f of files) {
    const dir = path.dirname(f);
    if (!names.has(dir)) names.set(dir, new Set());
    names.get(dir)!.add(path.basename(f));
  }
  const check = async (): Promise<void> => {
    timer = undefined;
    if (stopped || inFlight) return;
    const now = fingerprint(files);
    if (now === tried) return;
    tried = now;
    inFlight = true;
    const reason = 'TLS certificate files changed';
    log.info({ event: 'tls.files_changed', files }, `${reason}: asking the supervisor for a reload`);
    try {
      const generation = await reload(reason);
      log.info({ event: 'tls.reloaded', generation }, `reloaded for the new certificates: generation ${generation}`);
    } catch (err) {
      const e = err as { code?: string; message: string };
      log.error({ event: 'tls.reload_failed', code: e.code, err: e.message }, `reload for the changed certificate files failed; this generation keeps its certificates`);
      // Not the active generation yet (a reload was under way): try again after the next wait.
      if (/only the active generation/.test(e.message)) {
        tried = loaded;
        schedule();
      }
    } finally {
      inFlight = false;
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), debounce);
    timer.unref();
  };
  for (const dir of names.keys()) {
    try {
      const w = fs.watch(dir, { persistent: false }, () => schedule());
      w.on('error', (err) => log.warn({ dir, err: err.message }, `cannot watch ${dir} any more`));
      watchers.push(w);
    } catch (err) {
      log.warn({ dir, err: (err as Error).message }, `cannot watch ${dir}: certificate changes there need a reload by hand`);
    }
  }
  // Files replaced between the load and the watch are caught too.
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
