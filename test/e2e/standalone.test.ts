import { execa, type ResultPromise } from 'execa';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, ROOT } from '../helpers/baton.ts';
import { freePort, get } from '../helpers/ports.ts';

const started: ResultPromise[] = [];
afterEach(() => {
  for (const p of started.splice(0)) p.kill('SIGKILL');
});

/** Polls until the program answers (it is up), for at most `timeoutMs`. */
async function answers(port: number, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await get({ port })).body;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`nothing answered on 127.0.0.1:${port} within ${timeoutMs} ms`, { cause: err });
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe('without Baton', () => {
  it('an SDK program binds its address itself and drains on SIGTERM', async () => {
    const port = await freePort();
    const [node, ...args] = fixture('http-app.ts');
    const app = execa(node!, args, { env: { STANDALONE_ADDRESS: `127.0.0.1:${port}` }, reject: false });
    started.push(app);
    expect(await answers(port)).toMatch(/^generation 0 pid \d+/);
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow?ms=800', agent: false }, (res) => {
        // The headers are here, so the request is being served: now ask the program to stop.
        app.kill('SIGTERM');
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    // The request in flight completes; the process then exits 0 on its own.
    expect(body).toMatch(/^generation 0 /);
    expect((await app).exitCode).toBe(0);
  });

  it('the preload changes nothing for a program run by plain node', async () => {
    const port = await freePort();
    const register = path.join(ROOT, 'child/register.ts');
    const [node, flag, script] = fixture('preload-app.js');
    const app = execa(node!, [flag!, '--import', register, script!], { env: { APP_PORT: String(port) }, reject: false });
    started.push(app);
    expect(await answers(port)).toMatch(/^preload pid \d+/);
    app.kill('SIGTERM');
    expect((await app).signal).toBe('SIGTERM');
  });
});
