import pino, { type Logger } from 'pino';

/** JSON lines on stdout; prettified when stdout is a terminal (pino-pretty is loaded only then). */
export async function createLogger(level: string, name: string): Promise<Logger> {
  const options = { level, base: { instance: name, pid: process.pid } };
  if (process.stdout.isTTY) {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ sync: true, colorize: true, ignore: 'pid,instance', translateTime: 'HH:MM:ss.l' }));
  }
  return pino(options, pino.destination({ fd: 1, sync: true }));
}
