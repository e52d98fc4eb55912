// What `baton dev` prints for the app's lines: a pino JSON line prettified (pino-pretty, loaded
// with the first such line), anything else as written, both under the generation's prefix.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DevOutput } from '../../../supervisor/dev/output.ts';

function capture(): { out: DevOutput; lines: () => string[] } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  return { out: new DevOutput(stream, false), lines: () => chunks.join('').split('\n').filter(Boolean) };
}

describe('DevOutput.app', () => {
  it('prettifies a pino line and leaves other lines as written', () => {
    const { out, lines } = capture();
    out.app(3, 'stdout', 'listening on 3000');
    out.app(3, 'stdout', JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 1, 12, 0, 0), pid: 1, hostname: 'h', msg: 'request done', status: 200 }));
    out.app(3, 'stderr', '{"not":"pino"}');
    expect(lines()).toEqual([
      'gen 3 │ listening on 3000',
      expect.stringMatching(/^gen 3 │ \[\d\d:\d\d:\d\d\.\d{3}\] INFO: request done$/),
      'gen 3 │     status: 200',
      'gen 3 │ {"not":"pino"}',
    ]);
  });
});
