import type { Logger } from 'pino';
import { parseSdNotify } from '../../shared/sd-notify.ts';
import type { ChildPort } from '../os/os.ts';

/** A generation's sd_notify messages, read from its NOTIFY_SOCKET and acted on. */
export class NotifyReader {
  /** The last STATUS= the generation sent. */
  status?: string;
  private readonly proc: ChildPort;
  private readonly log: Logger;
  private readonly onReady: () => void;

  constructor(proc: ChildPort, log: Logger, onReady: () => void) {
    this.proc = proc;
    this.log = log;
    this.onReady = onReady;
  }

  /** Takes every queued message; READY=1 calls onReady (the generation decides whether it counts). */
  read(): void {
    for (const { payload, pid } of this.proc.readNotifications()) {
      const m = parseSdNotify(payload);
      const sender = { senderPid: pid };
      if (m.status !== undefined) {
        this.status = m.status;
        this.log.debug({ ...sender, status: m.status }, 'generation status');
      }
      if (m.stopping) this.log.info(sender, 'generation says it is stopping (STOPPING=1)');
      if (m.reloading) this.log.info(sender, 'generation says it is reloading its configuration (RELOADING=1)');
      // The generation is the process Baton started and signals; another main pid is not followed.
      if (m.mainPid !== undefined) this.log.debug({ ...sender, mainPid: m.mainPid }, 'MAINPID= ignored');
      if (m.ignored.length > 0) this.log.debug({ ...sender, ignored: m.ignored }, 'sd_notify keys ignored');
      if (m.ready) this.onReady();
    }
  }
}
