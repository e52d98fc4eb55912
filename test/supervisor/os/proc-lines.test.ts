// Two small OS helpers of a generation's process: a child's output split into lines, and whether
// a pid still runs, on real pipes and processes.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { forwardLines } from '../../../supervisor/os/forward-lines.ts';
import { running } from '../../../supervisor/os/proc-tree.ts';

describe('forwardLines', () => {
  it('hands over whole lines across chunks, and the unterminated rest at the end', async () => {
    const child = spawn(process.execPath, [
      '-e',
      "process.stdout.write('one\\ntw'); setTimeout(() => process.stdout.write('o\\n\\nthree'), 20)",
    ]);
    const lines: string[] = [];
    forwardLines(child.stdout, (line) => lines.push(line));
    await once(child.stdout, 'close');
    expect(lines).toEqual(['one', 'two', '', 'three']);
  });

  it('takes no stream', () => {
    expect(() => forwardLines(null, () => {})).not.toThrow();
  });
});

describe('running', () => {
  it('is true for a live process and false once it exited', async () => {
    expect(running(process.pid)).toBe(true);
    const child = spawn('sh', ['-c', 'exec sleep 30']);
    expect(running(child.pid!)).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(running(child.pid!)).toBe(false);
  });

  it('is false for a pid that does not exist', () => {
    expect(running(2 ** 22 + 1)).toBe(false);
  });
});
