import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'vitest';
import { controlRequest } from '../../supervisor/cli/control-client.ts';
import { type BatonProcess, waitForGone } from '../helpers/baton.ts';

/** What came back on one raw control connection, and whether the server closed it. */
export interface RawReply {
  data: string;
  closed: boolean;
}

/**
 * Writes `parts` on a fresh control connection (each a separate write), then either closes it
 * at once (`close: true`: a client cut off mid-request) or waits up to `waitMs` for the server
 * to answer and close.
 */
export function rawRequest(socketPath: string, parts: (string | Buffer)[], options: { close?: boolean; waitMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    let data = '';
    let closed = false;
    const socket = net.connect(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data, closed });
    }, options.waitMs ?? 5_000);
    socket.on('connect', () => {
      for (const part of parts) socket.write(part);
      if (options.close) socket.destroy();
    });
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = !options.close;
      clearTimeout(timer);
      resolve({ data, closed });
    });
  });
}

/** GET / on the generation's listener: its body names the generation. */
export function getApp(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('generation did not answer within 5 s')));
    req.on('error', reject);
  });
}

async function timed<T>(what: string, run: () => Promise<T>, limitMs: number): Promise<T> {
  const started = performance.now();
  const result = await run();
  const ms = performance.now() - started;
  expect(ms, `${what} answered in ${Math.round(ms)} ms`).toBeLessThan(limitMs);
  return result;
}

/**
 * After a fault: the serving generation still answers, status and reload answer within 2 s, stop
 * answers within 2 s and the supervisor exits 0 leaving no process, socket or segment behind.
 */
export async function expectHealthyThenStop(baton: BatonProcess, port: number, generation: number): Promise<void> {
  expect(await getApp(port)).toContain(`generation ${generation} `);
  const status = await timed('status', () => controlRequest(baton.socketPath, 'GET', '/status', 2_000), 2_000);
  expect(status.status).toBe(200);
  expect((status.body as { active: number }).active).toBe(generation);
  const reload = await timed('reload', () => controlRequest(baton.socketPath, 'POST', '/reload', 10_000), 5_000);
  expect(reload.status).toBe(200);
  expect(await getApp(port)).toContain(`generation ${generation + 1} `);
  const stop = await timed('stop', () => controlRequest(baton.socketPath, 'POST', '/stop', 2_000), 2_000);
  expect(stop.status).toBe(202);
  expect(await baton.exited).toMatchObject({ exitCode: 0 });
  expect(await waitForGone([...baton.childPids], 5_000)).toEqual([]);
  const runtime = path.dirname(baton.socketPath);
  const left = fs.existsSync(runtime) ? fs.readdirSync(runtime, { recursive: true }).map(String).filter((f) => !f.startsWith('compile-cache') && f !== 'notify') : [];
  expect(left).toEqual([]);
  expect(fs.readdirSync(baton.statsDir)).toEqual([]);
}
