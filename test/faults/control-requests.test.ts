import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, cleanupAll, fixture, httpConfig } from '../helpers/baton.ts';
import { expectHealthyThenStop, rawRequest } from './control-health.ts';

afterEach(cleanupAll);

async function started(): Promise<{ baton: BatonProcess; port: number }> {
  const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
  await baton.active(1);
  return { baton, port: await baton.port() };
}

describe('control socket: malformed and hostile requests', () => {
  it('survives a POST whose body is cut off after 8 of 100 bytes', async () => {
    const { baton, port } = await started();
    const cut = 'POST /reload HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"cold":';
    await rawRequest(baton.socketPath, [cut], { close: true });
    await expectHealthyThenStop(baton, port, 1);
  });

  it('survives an invalid chunk size, answering 400', async () => {
    const { baton, port } = await started();
    const bad = 'POST /reload HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n';
    const reply = await rawRequest(baton.socketPath, [bad]);
    expect(reply.closed).toBe(true);
    expect(reply.data).toMatch(/^HTTP\/1\.1 400 /);
    await expectHealthyThenStop(baton, port, 1);
  });

  it('survives a chunked body cut off mid-chunk', async () => {
    const { baton, port } = await started();
    const cut = 'POST /reload HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n40\r\n{"co';
    await rawRequest(baton.socketPath, [cut], { close: true });
    await expectHealthyThenStop(baton, port, 1);
  });

  it('survives a request target no URL parser accepts', async () => {
    const { baton, port } = await started();
    const reply = await rawRequest(baton.socketPath, ['GET //[ HTTP/1.1\r\nhost: x\r\n\r\n']);
    expect(reply.data).toMatch(/^HTTP\/1\.1 400 /);
    await expectHealthyThenStop(baton, port, 1);
  });

  it('closes a connection whose headers never finish (slowloris), within the header deadline', async () => {
    const { baton, port } = await started();
    const started_ = Date.now();
    // One header byte a second: the connection is never idle, yet its headers never end.
    const reply = await new Promise<{ closed: boolean; ms: number }>((resolve) => {
      const net_ = require_net();
      const socket = net_.connect(baton.socketPath, () => socket.write('GET /status HTTP/1.1\r\nx-slow: '));
      const drip = setInterval(() => socket.write('a'), 1_000);
      const give = setTimeout(() => {
        clearInterval(drip);
        socket.destroy();
        resolve({ closed: false, ms: Date.now() - started_ });
      }, 15_000);
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(drip);
        clearTimeout(give);
        resolve({ closed: true, ms: Date.now() - started_ });
      });
    });
    expect(reply.closed).toBe(true);
    expect(reply.ms).toBeLessThan(12_000);
    await expectHealthyThenStop(baton, port, 1);
  });

  it('closes a connection whose body stalls, within the body deadline', async () => {
    const { baton, port } = await started();
    const t0 = Date.now();
    const reply = await rawRequest(baton.socketPath, ['POST /reload HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{'], {
      waitMs: 20_000,
    });
    expect(reply.closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(15_000);
    await expectHealthyThenStop(baton, port, 1);
  });

  it('drops clients that never read their answer nor close: more of them than the connection cap', async () => {
    const { baton, port } = await started();
    const baseline = socketsOf(baton.pid);
    const net_ = require_net();
    // Each asks and then neither reads nor closes; without a deadline on the answer their
    // connections would fill the cap for good.
    const idle = Array.from({ length: 100 }, () => {
      const s = net_.connect(baton.socketPath, () => s.write('GET /status HTTP/1.1\r\nhost: x\r\n\r\n'));
      s.on('error', () => {});
      s.pause();
      return s;
    });
    const { controlRequest } = await import('../../supervisor/cli/control-client.ts');
    const deadline = Date.now() + 15_000;
    let answered = false;
    await new Promise((r) => setTimeout(r, 500));
    while (!answered && Date.now() < deadline) {
      answered = await controlRequest(baton.socketPath, 'GET', '/status', 1_000).then((r) => r.status === 200, () => false);
      if (!answered) await new Promise((r) => setTimeout(r, 200));
    }
    expect(answered).toBe(true);
    // The supervisor itself let go of them: its descriptors are back to what they were.
    const freed = Date.now() + 15_000;
    while (socketsOf(baton.pid) > baseline + 2 && Date.now() < freed) await new Promise((r) => setTimeout(r, 200));
    expect(socketsOf(baton.pid)).toBeLessThanOrEqual(baseline + 2);
    for (const s of idle) s.destroy();
    await expectHealthyThenStop(baton, port, 1);
  });

  it('caps concurrent connections and frees them: 300 idle connections, then status answers', async () => {
    const { baton, port } = await started();
    const net_ = require_net();
    const sockets = await Promise.all(
      Array.from({ length: 300 }, () => new Promise<import('node:net').Socket>((resolve) => {
        const s = net_.connect(baton.socketPath);
        s.on('error', () => {});
        s.on('connect', () => resolve(s));
        s.on('close', () => resolve(s));
      })),
    );
    // Closed by the server: those over the cap at once, the others at the header deadline.
    const deadline = Date.now() + 15_000;
    while (sockets.some((s) => !s.destroyed && s.readyState !== 'closed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(sockets.filter((s) => !s.destroyed && s.readyState !== 'closed')).toHaveLength(0);
    await expectHealthyThenStop(baton, port, 1);
  });
});

/** How many sockets process `pid` holds open. */
function socketsOf(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

function require_net(): typeof import('node:net') {
  return netModule;
}
import netModule from 'node:net';
