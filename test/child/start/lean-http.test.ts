// node:http's ES namespace without the getters that load undici (child/start/lean-http.ts), in real
// processes: Node's own list of the internal modules it loaded says whether undici came along.
import { execa } from 'execa';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig, NODE_FLAGS, ROOT } from '../../helpers/baton.ts';
import { freePort, get } from '../../helpers/ports.ts';

afterEach(cleanupAll);

const LEAN = pathToFileURL(path.join(ROOT, 'child/start/lean-http.ts')).href;
const UNDICI = "process.moduleLoadList.some((m) => m.includes('undici'))";

/** Runs ES module `body` in a fresh process after hideUndiciExports(); prints what it logs. */
function afterHiding(body: string, env: Record<string, string> = {}) {
  const code = `import { hideUndiciExports } from ${JSON.stringify(LEAN)};\nconsole.log(JSON.stringify(hideUndiciExports()));\n${body}`;
  return execa(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', code], { reject: false, env, timeout: 20_000 });
}

describe('hideUndiciExports', () => {
  it("leaves undici out of `import http from 'node:http'`, and http.WebSocket still loads it when used", async () => {
    const r = await afterHiding(`const { default: http } = await import('node:http');\nconsole.log(${UNDICI});\nconsole.log(typeof http.WebSocket, typeof http.CloseEvent, ${UNDICI});`);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['["WebSocket","CloseEvent","MessageEvent"]', 'false', 'function function true']);
  });

  it('without it the same import loads undici (what this module is for)', async () => {
    const r = await execa(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', `await import('node:http');\nconsole.log(${UNDICI});`]);
    expect(r.stdout).toBe('true');
  });

  it('a named import of WebSocket from node:http is then refused when the module links, naming the export', async () => {
    const r = await afterHiding("await import('data:text/javascript,import { WebSocket } from \"node:http\"; console.log(typeof WebSocket)');");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/SyntaxError: The requested module 'node:http' does not provide an export named 'WebSocket'/);
  });

  it('BATON_HTTP_EXPORTS=all keeps Node\'s own namespace: nothing hidden, the named import works', async () => {
    const r = await afterHiding("await import('data:text/javascript,import { WebSocket } from \"node:http\"; console.log(typeof WebSocket)');", { BATON_HTTP_EXPORTS: 'all' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['[]', 'function']);
  });
});

describe("an unmodified app under Baton's preload", () => {
  async function serve(env: Record<string, string> = {}): Promise<{ undiciBeforeRequest: boolean; webSocket: string }> {
    const port = await freePort();
    const baton = new BatonProcess(httpConfig(fixture('http-namespace-app.mjs'), { listeners: [{ name: 'http', address: `127.0.0.1:${port}` }], env: { APP_PORT: String(port), ...env } }));
    await baton.active(1);
    const r = await get({ port });
    expect(r.status).toBe(200);
    return JSON.parse(r.body) as { undiciBeforeRequest: boolean; webSocket: string };
  }

  it('serves without having loaded undici, and http.WebSocket works', async () => {
    expect(await serve()).toEqual({ undiciBeforeRequest: false, webSocket: 'function' });
  });

  it('with BATON_HTTP_EXPORTS=all in its environment, gets the namespace Node builds (undici loaded)', async () => {
    expect(await serve({ BATON_HTTP_EXPORTS: 'all' })).toEqual({ undiciBeforeRequest: true, webSocket: 'function' });
  });
});
