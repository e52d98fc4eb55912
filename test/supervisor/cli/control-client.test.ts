import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { controlRequest } from '../../../supervisor/cli/control-client.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-control-client-'));
fs.chmodSync(dir, 0o700);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A Unix-socket server answering each connection with `reply` (a function of the request text). */
function server(name: string, reply: (request: string, socket: net.Socket) => void): Promise<{ path: string; close: () => void }> {
  const p = path.join(dir, name);
  const s = net.createServer((socket) => {
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('\r\n\r\n')) reply(text, socket);
    });
  });
  return new Promise((resolve) => s.listen(p, () => resolve({ path: p, close: () => s.close() })));
}

describe('controlRequest', () => {
  it('sends one HTTP/1.1 request and reads the whole reply, however it comes', async () => {
    let seen = '';
    const s = await server('ok.sock', (request, socket) => {
      seen = request;
      // Written in two parts: the client must wait for the whole body.
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 27\r\nconnection: close\r\n\r\n{"ok":true,');
      setTimeout(() => socket.end('"generation":2}\n'), 20);
    });
    const r = await controlRequest(s.path, 'POST', '/reload?cold=1');
    s.close();
    expect(r).toEqual({ status: 200, body: { ok: true, generation: 2 } });
    expect(seen).toMatch(/^POST \/reload\?cold=1 HTTP\/1\.1\r\n/);
    expect(seen.toLowerCase()).toContain('\r\naccept: application/json\r\n');
  });

  it('ERR_CONTROL_UNREACHABLE with nobody there or a connection closed unanswered; ERR_TIMEOUT for a silent one; ERR_CONTROL for garbage', async () => {
    await expect(controlRequest(path.join(dir, 'nobody.sock'), 'GET', '/status')).rejects.toMatchObject({ code: 'ERR_CONTROL_UNREACHABLE', message: expect.stringContaining('(ENOENT): is it running?') });
    const hangUp = await server('hangup.sock', (_r, socket) => socket.end());
    await expect(controlRequest(hangUp.path, 'GET', '/status')).rejects.toMatchObject({ code: 'ERR_CONTROL_UNREACHABLE', message: expect.stringContaining('ECONNRESET') });
    hangUp.close();
    const silent = await server('silent.sock', () => {});
    await expect(controlRequest(silent.path, 'GET', '/status', 300)).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    silent.close();
    const garbage = await server('garbage.sock', (_r, socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nnot'));
    await expect(controlRequest(garbage.path, 'GET', '/status')).rejects.toMatchObject({ code: 'ERR_CONTROL', message: expect.stringContaining('unexpected reply') });
    garbage.close();
    // Not an HTTP reply, on a connection left open: an error at once, not the timeout.
    const stranger = await server('stranger.sock', (_r, socket) => socket.write('SSH-2.0-OpenSSH\r\n\r\n'));
    await expect(controlRequest(stranger.path, 'GET', '/status', 60_000)).rejects.toMatchObject({ code: 'ERR_CONTROL', message: expect.stringContaining('expected an HTTP/1.x status line') });
    stranger.close();
  });
});
