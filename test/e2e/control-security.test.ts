import { execa } from 'execa';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatonProcess, BIN, cleanupAll, fixture, httpConfig, NODE_FLAGS } from '../helpers/baton.ts';
import { controlCall, isRoot, rawExchange, requestAs, SKIP_NOT_ROOT } from '../helpers/control-peer.ts';

afterEach(cleanupAll);

const NOBODY = 65534;
const NOGROUP = 65534;
const OTHER = 65533;

/** The generations `baton status --json` lists, as the CLI sees them. */
async function generations(baton: BatonProcess): Promise<unknown[]> {
  const result = await baton.cli('status', '--json');
  expect(result.exitCode, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as { generations: { generation: number; pid: number; state: string }[] }).generations.map(
    ({ generation, pid, state }) => ({ generation, pid, state }),
  );
}

/** GET / on a new connection through the listener: which generation serves new clients. */
async function serving(baton: BatonProcess): Promise<string> {
  const port = await baton.port();
  const text = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
  return text.split(' pid')[0]!;
}

describe.skipIf(!isRoot)(`control socket with --control-group (${isRoot ? 'as root' : SKIP_NOT_ROOT})`, () => {
  /** A supervisor admitting nogroup, its test dir traversable so only Baton's own modes decide. */
  async function grouped(): Promise<BatonProcess> {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')), ['--control-group', 'nogroup']);
    fs.chmodSync(baton.dir, 0o711);
    await baton.active(1);
    return baton;
  }

  it('opens the socket 0660 in a 0750 directory, both group nogroup', async () => {
    const baton = await grouped();
    const dir = fs.statSync(path.dirname(baton.socketPath));
    const socket = fs.statSync(baton.socketPath);
    expect({ dir: dir.mode & 0o777, dirGid: dir.gid, socket: socket.mode & 0o777, socketGid: socket.gid }).toEqual({
      dir: 0o750,
      dirGid: NOGROUP,
      socket: 0o660,
      socketGid: NOGROUP,
    });
  });

  it('admits a member of the group, by primary gid or a supplementary group, to status and reload', async () => {
    const baton = await grouped();
    const primary = await requestAs({ uid: NOBODY, gid: NOGROUP }, baton.socketPath);
    expect(primary.status, JSON.stringify(primary)).toBe(200);
    expect(JSON.parse(primary.body!)).toMatchObject({ active: 1 });

    const supplementary = await requestAs({ uid: OTHER, gid: OTHER, groups: [NOGROUP] }, baton.socketPath);
    expect(supplementary.status, JSON.stringify(supplementary)).toBe(200);

    const reload = await requestAs({ uid: NOBODY, gid: NOGROUP }, baton.socketPath, 'POST', '/reload');
    expect(reload.status, JSON.stringify(reload)).toBe(200);
    expect(JSON.parse(reload.body!)).toMatchObject({ ok: true, generation: 2 });
    expect(await serving(baton)).toBe('generation 2');
  });

  it('refuses a uid outside the group: the file modes first, then SO_PEERCRED when the modes are opened', async () => {
    const baton = await grouped();
    const stranger = { uid: NOBODY, gid: OTHER };
    expect(await requestAs(stranger, baton.socketPath)).toMatchObject({ error: 'EACCES' });

    // Open the modes as a careless operator might: only the peer check stands between.
    fs.chmodSync(path.dirname(baton.socketPath), 0o755);
    fs.chmodSync(baton.socketPath, 0o666);
    const refused = await requestAs(stranger, baton.socketPath, 'POST', '/reload');
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body!).error).toEqual({
      code: 'ERR_PEER_REJECTED',
      message: `uid ${NOBODY} may not control this instance (owner uid 0 or group ${NOGROUP}; peer gid ${OTHER}, pid ${refused.pid})`,
    });
    const event = await baton.waitForEvent('control-refused', (e) => e.peerPid === refused.pid);
    expect(event).toMatchObject({ uid: NOBODY, gid: OTHER });
    expect(await generations(baton)).toEqual([{ generation: 1, pid: expect.any(Number), state: 'active' }]);
  });
});

describe('--control-group', () => {
  it('names a group that does not exist, and starts nothing', async () => {
    const result = await execa(process.execPath, [...NODE_FLAGS, BIN, 'run', '--control-group', 'no-such-group-here', '--', ...fixture('http-app.ts')], {
      reject: false,
      env: { BATON_RUNTIME_DIR: '/nonexistent/never-created' },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("control-group: no group named 'no-such-group-here' in /etc/group");
    expect(fs.existsSync('/nonexistent/never-created')).toBe(false);
  });
});

describe('control socket requests', () => {
  it('refuses bad JSON, unknown fields, wrong types and content types, unknown paths, wrong methods and oversized bodies, and changes nothing', async () => {
    const baton = new BatonProcess(httpConfig(fixture('http-app.ts')));
    await baton.active(1);
    const before = await generations(baton);
    const sock = baton.socketPath;

    const badJson = await controlCall(sock, 'POST', '/reload', '{"cold": tru}');
    expect([badJson.status, badJson.body.error?.code]).toEqual([400, 'ERR_BAD_REQUEST']);
    expect(badJson.body.error?.message).toContain('not valid JSON');
    expect(badJson.body.error?.message).toContain('at position 12 (line 1 column 13)');

    const unknownField = await controlCall(sock, 'POST', '/reload', '{"cold": true, "now": true}');
    expect([unknownField.status, unknownField.body.error?.message]).toEqual([400, 'POST /reload takes cold, wait-canary: unknown field "now"']);

    const wrongType = await controlCall(sock, 'POST', '/reload', '{"cold": "yes"}');
    expect([wrongType.status, wrongType.body.error?.message]).toEqual([400, 'POST /reload takes cold, wait-canary: field "cold": expected boolean, got "yes"']);

    const form = await controlCall(sock, 'POST', '/reload', 'cold=1', 'application/x-www-form-urlencoded');
    expect([form.status, form.body.error?.code]).toEqual([415, 'ERR_BAD_REQUEST']);

    const unknownPath = await controlCall(sock, 'POST', '/restart');
    expect(unknownPath.status).toBe(404);
    expect(unknownPath.body.error?.message).toContain('unknown endpoint POST /restart; endpoints: GET /status, GET /stats, GET /metrics, POST /reload, POST /upgrade, GET /events, POST /rollback, POST /promote, POST /stop');

    const wrongMethod = await controlCall(sock, 'PUT', '/reload');
    expect([wrongMethod.status, wrongMethod.headers.allow]).toEqual([405, 'POST']);

    // Announced too big: answered at the headers, the body never sent.
    const announced = await rawExchange(sock, `POST /reload HTTP/1.1\r\nhost: baton\r\ncontent-type: application/json\r\ncontent-length: ${1024 * 1024}\r\n\r\n{"cold":`);
    expect(announced).toMatch(/^HTTP\/1\.1 413 /);
    expect(announced).toContain('request body over 65536 bytes (content-length 1048576)');
    // Chunked, so only counting tells: refused once past the limit.
    const chunk = `${'0'.repeat(32 * 1024)}`;
    const streamed = await rawExchange(
      sock,
      `POST /reload HTTP/1.1\r\nhost: baton\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${[1, 2, 3].map(() => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('')}`,
    );
    expect(streamed).toMatch(/^HTTP\/1\.1 413 /);
    expect(streamed).toContain('content-length not given');

    expect(await generations(baton)).toEqual(before);
    expect(baton.events.filter((e) => e.type === 'worker-starting' && e.generation === 2)).toEqual([]);
    expect(await serving(baton)).toBe('generation 1');

    // The same endpoint with a good body does act: the refusals above were about the requests.
    const cold = await controlCall(sock, 'POST', '/reload', '{"cold": true}');
    expect(cold.body).toMatchObject({ ok: true, generation: 2 });
    expect(await serving(baton)).toBe('generation 2');
  });
});
