import type { MemoryFlag } from '../memory/monitor.ts';
import type { Generation, GenerationInfo } from './generation.ts';

/** How many exited generations `status` still shows. */
const EXITED_KEPT = 8;

/** The generations a supervisor launched, live and recently exited, oldest first. */
export class GenerationTable {
  private readonly all: Generation[] = [];

  add(generation: Generation): void {
    this.all.push(generation);
  }

  /** Those that have not exited. */
  live(): Generation[] {
    return this.all.filter((g) => g.state !== 'exited');
  }

  /** Forgets exited generations beyond the last few. */
  trim(): void {
    const exited = this.all.filter((g) => g.state === 'exited');
    for (const old of exited.slice(0, Math.max(0, exited.length - EXITED_KEPT))) this.all.splice(this.all.indexOf(old), 1);
  }

  /** What `status` shows of each, with its memory flag and, for several workers, each one's RSS. */
  infos(flag: (id: number) => MemoryFlag | undefined, rss: (pid: number) => number | undefined): (GenerationInfo & { memory?: MemoryFlag })[] {
    return this.all.map((g) => {
      const memory = flag(g.id);
      const info = g.info();
      const workers = info.workers?.map((w) => {
        const bytes = w.state === 'exited' ? undefined : rss(w.pid);
        return bytes !== undefined ? { ...w, rss: bytes } : w;
      });
      return { ...info, ...(workers ? { workers } : {}), ...(memory ? { memory } : {}) };
    });
  }

  /** One line for a service manager: the active generation, how many drain, open connections. */
  summary(active: Generation | undefined, stopping: boolean): string {
    const live = this.live();
    const draining = live.filter((g) => g.state === 'draining').length;
    const connections = live.reduce((n, g) => n + (g.connections ?? 0), 0);
    const serving = active?.workers.filter((w) => w.state === 'active').length ?? 0;
    const pids = active && active.size > 1 ? `${serving}/${active.size} workers` : `pid ${active?.pid}`;
    const head = active ? `generation ${active.id} active (${pids})` : stopping ? 'stopping' : 'no generation active';
    return `${head}, ${draining} draining, ${connections} open connections`;
  }
}
