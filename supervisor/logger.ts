import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** JSON lines on stdout; prettified when stdout is a terminal. */
export function createLogger(level: string, name: string): Logger {
  const options = { level, base: { instance: name, pid: process.pid } };
  if (process.stdout.isTTY) {
    return pino(options, pretty({ sync: true, colorize: true, ignore: 'pid,instance', translateTime: 'HH:MM:ss.l' }));
  }
  return pino(options, pino.destination({ fd: 1, sync: true }));
}
