import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CLIENT_COMMANDS, isClientCommand, main } from '../../../supervisor/cli/client-cli.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function captured(stream: NodeJS.WriteStream): () => string {
  const chunks: string[] = [];
  vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  return () => chunks.join('');
}

describe('client-cli', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('bin/baton sends exactly these commands to the CommonJS client bundle', () => {
    // bin/baton must not load the bundle to ask: it keeps its own copy of the list.
    const bin = fs.readFileSync(path.join(ROOT, 'bin/baton'), 'utf8');
    const list = /var CLIENT_COMMANDS = (\[[^\]]*\]);/.exec(bin)?.[1];
    expect(list, 'bin/baton has no CLIENT_COMMANDS list').toBeDefined();
    expect(JSON.parse(list!.replaceAll("'", '"'))).toEqual([...CLIENT_COMMANDS]);
  });

  it('knows its own commands and no other', () => {
    for (const c of CLIENT_COMMANDS) expect(isClientCommand(c)).toBe(true);
    for (const c of ['run', 'dev', 'events', 'stats', undefined]) expect(isClientCommand(c)).toBe(false);
  });

  it('prints a command’s help and exits 0', async () => {
    const out = captured(process.stdout);
    expect(await main(['reload', '--help'])).toBe(0);
    expect(out()).toMatch(/^ {2}baton reload \[--name N\] \[--cold\]/m);
    expect(out()).not.toMatch(/baton status/);
  });

  it('an unknown option is bad usage: exit 2 with the option named', async () => {
    const err = captured(process.stderr);
    expect(await main(['status', '--bogus'])).toBe(2);
    expect(err()).toMatch(/^baton: Unknown option '--bogus'/);
  });

  it('no instance at the socket: exit 1 and says which socket', async () => {
    const err = captured(process.stderr);
    const dir = fs.mkdtempSync('/tmp/baton-client-cli-');
    const socket = path.join(dir, 'none.sock');
    try {
      expect(await main(['stop', '--control-socket', socket])).toBe(1);
      expect(err()).toContain(`no Baton instance answers at ${socket}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
