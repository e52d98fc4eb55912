/**
 * sd_notify(3) messages as a child sends them to $NOTIFY_SOCKET: newline-separated KEY=VALUE
 * assignments in one datagram. Only what a supervisor of short-lived generations acts on is read
 * out; everything else is listed in `ignored` so it can be logged.
 */

export interface SdNotify {
  /** READY=1: start-up is finished. */
  ready: boolean;
  /** STOPPING=1: the program has begun shutting down. */
  stopping: boolean;
  /** RELOADING=1: the program reloads its own configuration. */
  reloading: boolean;
  /** STATUS=…: a free-form line describing the program's state (the last one wins). */
  status?: string;
  /** MAINPID=…: the program names another main process; a generation is its own pid, so this is not followed. */
  mainPid?: string;
  /** Keys (or malformed lines) this parser does not act on: WATCHDOG, ERRNO, FDSTORE, … */
  ignored: string[];
}

export function parseSdNotify(payload: string): SdNotify {
  const message: SdNotify = { ready: false, stopping: false, reloading: false, ignored: [] };
  for (const line of payload.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    // A line without '=' is malformed; systemd skips it too.
    if (eq <= 0) {
      message.ignored.push(line);
      continue;
    }
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'READY' && value === '1') message.ready = true;
    else if (key === 'STOPPING' && value === '1') message.stopping = true;
    else if (key === 'RELOADING' && value === '1') message.reloading = true;
    else if (key === 'STATUS') message.status = value;
    else if (key === 'MAINPID') message.mainPid = value;
    else message.ignored.push(key);
  }
  return message;
}
