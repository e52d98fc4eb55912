import type { Logger } from 'pino';
import { checkTransition, type TransitionTable } from './state-table.ts';

/**
 * What the supervisor is doing, one at a time:
 * - `idle`: constructed, not started;
 * - `starting`: no generation has served yet (the first one, or its restarts, is on its way);
 * - `serving`: a generation is active;
 * - `recovering`: the active generation died; a restart is scheduled or starting;
 * - `reloading`: a reload is under way (a generation may or may not be active meanwhile);
 * - `upgrading`: frozen for a hand-over to a successor supervisor (reloads and restarts refused);
 * - `retiring`: a successor serves; the generations drain, the sockets stay open for it;
 * - `stopping`: every generation drains, then the sockets close;
 * - `stopped`: every generation has exited.
 */
export type SupervisorMode = 'idle' | 'starting' | 'serving' | 'recovering' | 'reloading' | 'upgrading' | 'retiring' | 'stopping' | 'stopped';

const ENDING = ['retiring', 'stopping'] as const;

/** The moves the supervisor's mode may make. */
export const SUPERVISOR_TRANSITIONS: TransitionTable<SupervisorMode> = {
  idle: ['starting', ...ENDING],
  starting: ['serving', 'reloading', 'upgrading', ...ENDING],
  serving: ['recovering', 'reloading', 'upgrading', ...ENDING],
  recovering: ['serving', 'reloading', 'upgrading', ...ENDING],
  reloading: ['serving', 'starting', 'recovering', ...ENDING],
  upgrading: ['serving', 'starting', 'recovering', ...ENDING],
  // A stop that turns into a hand-over (a successor that gave up before taking over) retires.
  stopping: ['retiring', 'stopped'],
  // A successor that died after the hand-over: the retiring supervisor serves again (takeBack).
  retiring: ['stopped', 'recovering'],
  stopped: [],
};

/** The supervisor's mode and the one it returns to after a reload or a failed upgrade. */
export class ModeMachine {
  private current: SupervisorMode = 'idle';
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  get mode(): SupervisorMode {
    return this.current;
  }

  /** True from stop() (or retire()) on. */
  get ending(): boolean {
    return this.current === 'stopping' || this.current === 'retiring' || this.current === 'stopped';
  }

  is(...modes: SupervisorMode[]): boolean {
    return modes.includes(this.current);
  }

  /** Moves to `to` (checked against SUPERVISOR_TRANSITIONS); returns the mode it left. */
  to(to: SupervisorMode): SupervisorMode {
    const from = this.current;
    if (checkTransition('supervisor', SUPERVISOR_TRANSITIONS, from, to, this.log)) {
      this.current = to;
      this.log.debug({ from, to }, `supervisor ${from} → ${to}`);
    }
    return from;
  }

  /**
   * Where a reload or a failed upgrade that began in `from` lands: serving when a generation is
   * active, else starting when none ever served, else recovering.
   */
  settle(from: SupervisorMode, active: boolean): void {
    this.to(active ? 'serving' : from === 'starting' || from === 'idle' ? 'starting' : 'recovering');
  }
}
