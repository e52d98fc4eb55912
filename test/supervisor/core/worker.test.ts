import { describe, expect, it } from 'vitest';
import { BatonError } from '../../../shared/errors.ts';
import { Worker as Generation, type WorkerOptions as GenerationOptions, type WorkerState as GenerationState } from '../../../supervisor/core/worker.ts';
import { FakeOs, flush, observe, silentLog } from '../os/fake-os.ts';

function start(overrides: Partial<GenerationOptions> = {}) {
  const os = new FakeOs();
  const generation = new Generation(
    {
      id: 7,
      instance: 'shop',
      spawn: { command: 'node', args: ['app.js'], cwd: '/srv', env: {}, listenFds: [100] },
      readiness: 'auto',
      readyTimeout: 2500,
      drainTimeout: 10_000,
      shutdownTimeout: 3000,
      drainSignal: 'SIGUSR2',
      requestListener: () => {
        throw new Error('no listener expected in this test');
      },
      ...overrides,
    },
    os,
    silentLog,
  );
  return { os, generation, child: os.child };
}

async function readySdk(overrides: Partial<GenerationOptions> = {}) {
  const started = start({ readiness: 'sdk', ...overrides });
  await started.child.sayReady();
  expect(started.generation.state).toBe('ready');
  return started;
}

describe('Generation readiness', () => {
  it('becomes ready on hello + ready, and the hello reply carries generation and instance', async () => {
    const { generation, child, os } = start({ readiness: 'sdk' });
    expect(child.spec.command).toBe('node');
    const hello = child.push({ type: 'hello', pid: child.pid, runtime: 'node v24' });
    await flush();
    expect(generation.sdk).toBe(true);
    expect(child.ackFor(hello)).toMatchObject({ type: 'ack', ok: true, generation: 7, instance: 'shop', startedAt: os.now() });
    expect(generation.state).toBe('starting');
    const ready = child.push({ type: 'ready' });
    await flush();
    expect(generation.state).toBe('ready');
    expect(child.ackFor(ready)).toMatchObject({ ok: true });
    await expect(generation.whenReady()).resolves.toBeUndefined();
  });

  it('rejects whenReady with ERR_READY_TIMEOUT naming the timeout and the stderr tail', async () => {
    const { generation, child, os } = start({ readiness: 'sdk' });
    child.stderr = ['listening soon', 'still loading the cache'];
    const ready = observe(generation.whenReady());
    await os.advance(2499);
    expect(ready.state).toBe('pending');
    await os.advance(1);
    expect(ready.state).toBe('rejected');
    const err = ready.error as BatonError;
    expect(err.code).toBe('ERR_READY_TIMEOUT');
    expect(err.message).toContain(`generation 7 (pid ${child.pid}) did not become ready within 2.5s`);
    expect(err.message).toContain('  | listening soon\n  | still loading the cache');
  });

  it('rejects whenReady with ERR_GENERATION_EXITED, the exit code and stderr when it exits first', async () => {
    const { generation, child } = start({ readiness: 'sdk' });
    child.stderr = ["Error: Cannot find module 'express'"];
    child.exit(1);
    await expect(generation.whenReady()).rejects.toMatchObject({
      code: 'ERR_GENERATION_EXITED',
      message: expect.stringMatching(/generation 7 .*exited with code 1 before it was ready.*\n {2}\| Error: Cannot find module 'express'/s),
    });
    expect(generation.state).toBe('exited');
    expect(generation.info().exit).toEqual({ code: 1, signal: null });
  });

  it('names the signal when a starting generation is killed', async () => {
    const { generation, child } = start({ readiness: 'sdk' });
    child.exit(null, 'SIGSEGV');
    await expect(generation.whenReady()).rejects.toThrow(/was killed by SIGSEGV before it was ready$/);
  });

  it("'auto' with listeners and no hello is ready only after two consecutive accepting polls", async () => {
    const { generation, child, os } = start({ readiness: 'auto' });
    await os.advance(20);
    expect(child.acceptingAsked).toEqual([[100]]);
    child.accepting = true;
    await os.advance(20); // streak 1
    child.accepting = false;
    await os.advance(20); // streak broken
    child.accepting = true;
    await os.advance(20); // streak 1 again
    expect(generation.state).toBe('starting');
    await os.advance(20); // streak 2
    expect(generation.state).toBe('ready');
    await expect(generation.whenReady()).resolves.toBeUndefined();
  });

  it("'auto' after a hello waits for ready: accepting alone is not enough", async () => {
    const { generation, child, os } = start({ readiness: 'auto' });
    child.accepting = true;
    child.push({ type: 'hello', pid: child.pid, runtime: 'node' });
    await os.advance(200);
    expect(generation.state).toBe('starting');
    child.push({ type: 'ready' });
    await flush();
    expect(generation.state).toBe('ready');
  });

  it("'auto' without listeners never polls; 'accepting' with a probe waits for the probe", async () => {
    const none = start({ readiness: 'auto', spawn: { command: 'x', args: [], cwd: '/', env: {}, listenFds: [] } });
    await none.os.advance(1000);
    expect(none.child.acceptingAsked).toEqual([]);

    let answer = false;
    const probed = start({ readiness: 'accepting', probe: () => Promise.resolve(answer) });
    probed.child.accepting = true;
    await probed.os.advance(100);
    expect(probed.generation.state).toBe('starting');
    answer = true;
    await probed.os.advance(40);
    expect(probed.generation.state).toBe('ready');
  });
});

describe('Generation promote and drain', () => {
  it('promote moves ready → active, and does nothing before ready', async () => {
    const { generation, child } = start({ readiness: 'sdk' });
    generation.promote();
    expect(generation.state).toBe('starting');
    await child.sayReady();
    generation.promote();
    expect(generation.state).toBe('active');
  });

  it('drains an SDK generation by message, then SIGTERM at the drain timeout, then SIGKILL', async () => {
    const { generation, child, os } = await readySdk();
    generation.promote();
    const t0 = os.now();
    generation.drain('replaced');
    expect(generation.state).toBe('draining');
    expect(child.sent.at(-1)).toMatchObject({ type: 'drain', deadline: t0 + 10_000, baton: 1 });
    expect(child.signals).toEqual([]);
    await os.advance(9_999);
    expect(child.signals).toEqual([]);
    await os.advance(1);
    expect(child.signals).toEqual(['SIGTERM']);
    await os.advance(2_999);
    expect(child.signals).toEqual(['SIGTERM']);
    expect(generation.killedAtShutdown).toBe(false);
    await os.advance(1);
    expect(child.signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(generation.killedAtShutdown).toBe(true);
    child.exit(null, 'SIGKILL');
    expect(generation.state).toBe('exited');
  });

  it('sends no signal after the generation exits within the drain timeout', async () => {
    const { generation, child, os } = await readySdk();
    generation.drain('stop');
    child.exit(0);
    await os.advance(60_000);
    expect(child.signals).toEqual([]);
    expect(os.pendingTimers).toBe(0);
  });

  it('signals a non-SDK generation with drainSignal at once, and an SDK one whose channel is gone', async () => {
    const plain = start({ readiness: 'accepting' });
    plain.child.accepting = true;
    await plain.os.advance(40);
    plain.generation.promote();
    plain.generation.drain('replaced');
    expect(plain.child.signals).toEqual(['SIGUSR2']);
    expect(plain.child.sent.filter((m) => m.type === 'drain')).toEqual([]);

    const gone = await readySdk();
    gone.child.connected = false;
    gone.generation.drain('replaced');
    expect(gone.child.signals).toEqual(['SIGUSR2']);
  });

  it('a generation drained while starting rejects whenReady with ERR_RELOAD_SUPERSEDED', async () => {
    const { generation } = start({ readiness: 'sdk' });
    generation.drain('supervisor stopping');
    await expect(generation.whenReady()).rejects.toMatchObject({ code: 'ERR_RELOAD_SUPERSEDED' });
  });

  it('emits state events in order, then exit', async () => {
    const { generation, child } = start({ readiness: 'sdk' });
    const events: string[] = [];
    generation.on('state', (to: GenerationState, from: GenerationState) => events.push(`${from}→${to}`));
    generation.on('exit', (exit) => events.push(`exit ${exit.code}`));
    await child.sayReady();
    generation.promote();
    generation.drain('stop');
    child.exit(0);
    expect(events).toEqual(['starting→ready', 'ready→active', 'active→draining', 'draining→exited', 'exit 0']);
  });
});

describe('Generation protocol', () => {
  it('answers listen by sending the descriptor first, then an ack announcing fds: 1', async () => {
    const asked: [string, number][] = [];
    const { child } = start({
      requestListener: (address, generation) => {
        asked.push([address, generation]);
        return { fd: 42, name: 'admin', address: '127.0.0.1:9000' };
      },
    });
    const seq = child.push({ type: 'listen', address: '127.0.0.1:9000' });
    await flush();
    expect(asked).toEqual([['127.0.0.1:9000', 7]]);
    expect(child.outbox).toEqual([
      { kind: 'fds', fds: [42], payload: 'admin' },
      { kind: 'message', message: expect.objectContaining({ type: 'ack', ack: seq, ok: true, fds: 1, name: 'admin', address: '127.0.0.1:9000' }) },
    ]);
  });

  it('a refused listen is an error ack with the listener error code and no descriptor', async () => {
    const { child } = start({
      requestListener: () => {
        throw new BatonError('ERR_LISTENER', "refusing to bind 0.0.0.0:80 at a generation's request");
      },
    });
    const seq = child.push({ type: 'listen', address: '0.0.0.0:80' });
    await flush();
    expect(child.outbox.filter((o) => o.kind === 'fds')).toEqual([]);
    expect(child.ackFor(seq)).toMatchObject({ ok: false, error: { code: 'ERR_LISTENER', message: expect.stringContaining('0.0.0.0:80') } });
  });

  it('answers an unknown message type with ERR_PROTOCOL', async () => {
    const { child } = start();
    const seq = child.push({ type: 'teleport' });
    await flush();
    expect(child.ackFor(seq)).toMatchObject({ ok: false, error: { code: 'ERR_PROTOCOL', message: expect.stringContaining("'teleport'") } });
  });

  it('refuses another protocol version with ERR_PROTOCOL_VERSION and does not take the hello', async () => {
    const { generation, child } = start();
    child.pushRaw({ baton: 2, seq: 9, type: 'hello', pid: child.pid, runtime: 'node' });
    await flush();
    expect(child.ackFor(9)).toMatchObject({ ok: false, error: { code: 'ERR_PROTOCOL_VERSION' } });
    expect(generation.sdk).toBe(false);
  });

  it("ignores an app's own messages on the channel", async () => {
    const { generation, child } = start({ readiness: 'sdk' });
    child.pushRaw({ type: 'ready' });
    child.pushRaw('hello');
    child.pushRaw({ cmd: 'NODE_CLUSTER', seq: 1 });
    await flush();
    expect(child.outbox).toEqual([]);
    expect(generation.state).toBe('starting');
  });

  it('records reported connections without replying', async () => {
    const { generation, child } = start();
    child.push({ type: 'connections', open: 3 });
    await flush();
    expect(generation.info().connections).toBe(3);
    expect(child.outbox).toEqual([]);
  });
});

describe('Generation NOTIFY_SOCKET and probes', () => {
  const spawn = { command: 'gunicorn', args: ['app:app'], cwd: '/srv', env: {}, listenFds: [100], notifySocket: '/run/baton/notify/shop-7.sock' };

  it("'notify' is ready on READY=1 (not on a status alone), never polls accepting, and shows the last STATUS", async () => {
    const { generation, child, os } = start({ readiness: 'notify', spawn });
    child.accepting = true;
    child.notify('STATUS=loading the model');
    await os.advance(20);
    expect(generation.state).toBe('starting');
    expect(generation.info().status).toBe('loading the model');
    child.notify('READY=1\nSTATUS=Gunicorn arbiter booted');
    await os.advance(20);
    expect(generation.state).toBe('ready');
    await expect(generation.whenReady()).resolves.toBeUndefined();
    expect(generation.info()).toMatchObject({ state: 'ready', status: 'Gunicorn arbiter booted' });
    expect(child.acceptingAsked).toEqual([]);
  });

  it("'notify' without READY=1 times out; STOPPING, RELOADING, MAINPID and unknown keys change nothing", async () => {
    const { generation, child, os } = start({ readiness: 'notify', spawn });
    const ready = observe(generation.whenReady());
    child.notify('STOPPING=1\nRELOADING=1\nMAINPID=1\nWATCHDOG=1\nREADY=0');
    await os.advance(2499);
    expect(ready.state).toBe('pending');
    expect(generation.state).toBe('starting');
    await os.advance(1);
    expect((ready.error as BatonError).code).toBe('ERR_READY_TIMEOUT');
  });

  it('takes READY=1 from another pid the port passes on (the port keeps only the process tree)', async () => {
    const { generation, child, os } = start({ readiness: 'notify', spawn });
    child.notify('READY=1', child.pid + 1);
    await os.advance(20);
    expect(generation.state).toBe('ready');
  });

  it('reads every 20 ms while starting, every second once ready, and not at all after exit', async () => {
    const { child, os } = start({ readiness: 'notify', spawn });
    await os.advance(100);
    expect(child.notifyReads).toBe(5);
    child.notify('READY=1');
    await os.advance(20);
    const atReady = child.notifyReads;
    await os.advance(2000);
    expect(child.notifyReads).toBe(atReady + 2);
    child.notify('STATUS=serving 3 requests');
    await os.advance(1000);
    expect(child.notifyReads).toBe(atReady + 3);
    child.exit(0);
    await os.advance(5000);
    expect(child.notifyReads).toBe(atReady + 3);
  });

  it("'auto' also takes READY=1 when it comes before accepting; 'accepting' and 'sdk' do not", async () => {
    const auto = start({ readiness: 'auto', spawn });
    auto.child.notify('READY=1');
    await auto.os.advance(20);
    expect(auto.generation.state).toBe('ready');

    for (const readiness of ['accepting', 'sdk'] as const) {
      const other = start({ readiness, spawn });
      other.child.notify('READY=1');
      await other.os.advance(200);
      expect(other.generation.state).toBe('starting');
    }
  });

  it('without a notify socket nothing is read', async () => {
    const { child, os } = start({ readiness: 'auto' });
    await os.advance(200);
    expect(child.notifyReads).toBe(0);
  });

  it("'tcp' asks the probe with the generation's pid until it answers true, without the epoll check", async () => {
    let answer = false;
    const asked: number[] = [];
    const { generation, child, os } = start({
      readiness: 'tcp',
      probe: (pid) => {
        asked.push(pid);
        return Promise.resolve(answer);
      },
    });
    child.accepting = true;
    await os.advance(100);
    expect(generation.state).toBe('starting');
    expect(asked.length).toBeGreaterThanOrEqual(3);
    answer = true;
    await os.advance(20);
    expect(generation.state).toBe('ready');
    expect(new Set(asked)).toEqual(new Set([child.pid]));
    expect(child.acceptingAsked).toEqual([]);
  });
});
