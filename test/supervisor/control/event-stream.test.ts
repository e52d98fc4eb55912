import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlServer } from '../../../supervisor/control/server.ts';
import type { ControlTarget } from '../../../supervisor/control/api.ts';
import { EventBus, type PublishedEvent } from '../../../supervisor/core/events.ts';
import type { StatusSnapshot } from '../../../supervisor/core/supervisor.ts';

const log = pino({ level: 'silent' });
const servers: ControlServer[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A real control server on a socket of its own, whose target publishes on `bus`. */
async function serve(bus: EventBus | undefined): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-events-'));
  dirs.push(dir);
  const run = path.join(dir, 'run');
  fs.mkdirSync(run, { mode: 0o700 });
  const socketPath = path.join(run, 'test.sock');
  const target: ControlTarget = {
    status: () => ({ instance: 'test', pid: process.pid, uptimeMs: 0, active: null, stopping: false, generations: [], listeners: [] }) as unknown as StatusSnapshot,
    reload: () => Promise.reject(new Error('no')),
    stop: () => undefined,
    stats: () => [],
    ...(bus ? { events: bus } : {}),
  };
  const server = new ControlServer(socketPath, target, log);
  servers.push(server);
  await server.listen();
  return socketPath;
}

/** GET `path`: the status, the headers, and the NDJSON lines read until `lines` have come (or the end). */
function read(socketPath: string, p: string, lines = Infinity): Promise<{ status: number; pid: string | undefined; events: PublishedEvent[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: p }, (res) => {
      let body = '';
      const done = (): void => {
        const events = res.headers['content-type'] === 'application/x-ndjson' ? body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as PublishedEvent) : [];
        resolve({ status: res.statusCode ?? 0, pid: res.headers['x-baton-pid'] as string | undefined, events, body });
      };
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (body.split('\n').filter(Boolean).length >= lines) {
          done();
          req.destroy();
        }
      });
      res.on('end', done);
    });
    req.on('error', reject);
  });
}

describe('GET /events', () => {
  it('replays the kept events above ?after=, then streams new ones as they are published', async () => {
    const bus = new EventBus(() => 1_000);
    bus.publish({ type: 'stopping', reason: 'a' });
    bus.publish({ type: 'stopping', reason: 'b' });
    const socketPath = await serve(bus);
    const all = await read(socketPath, '/events?follow=0');
    expect(all.status).toBe(200);
    expect(all.pid).toBe(String(process.pid));
    expect(all.events).toEqual([
      { type: 'stopping', reason: 'a', seq: 1, time: 1_000 },
      { type: 'stopping', reason: 'b', seq: 2, time: 1_000 },
    ]);
    expect((await read(socketPath, '/events?after=1&follow=0')).events.map((e) => e.seq)).toEqual([2]);
    const following = read(socketPath, '/events?after=2', 1);
    // Published once the stream is open: the reader has only this one to wait for.
    setTimeout(() => bus.publish({ type: 'stop-forced', live: 2 }), 50);
    expect((await following).events).toEqual([{ type: 'stop-forced', live: 2, seq: 3, time: 1_000 }]);
    expect(bus.listenerCount('event')).toBeLessThanOrEqual(1);
  });

  it('answers a bad ?after= or ?follow= with a 400 that says what was expected, and is not offered without events', async () => {
    const socketPath = await serve(new EventBus());
    const bad = await read(socketPath, '/events?after=-1');
    expect(bad.status).toBe(400);
    const message = (r: { body: string }): string => (JSON.parse(r.body) as { error: { code: string; message: string } }).error.message;
    expect(message(bad)).toMatch(/^invalid after="-1": expected an event number/);
    expect(message(await read(socketPath, '/events?follow=yes'))).toBe('invalid follow="yes": expected 0 or 1');
    const without = await read(await serve(undefined), '/events');
    expect(without.status).toBe(404);
  });

  it('keeps the last 1000 events and numbers them on', () => {
    const bus = new EventBus();
    for (let i = 0; i < 1_005; i++) bus.publish({ type: 'taken-back' });
    const kept = bus.after(0);
    expect(kept).toHaveLength(1_000);
    expect(kept[0]?.seq).toBe(6);
    expect(bus.last).toBe(1_005);
    expect(bus.after(1_003).map((e) => e.seq)).toEqual([1_004, 1_005]);
  });
});
