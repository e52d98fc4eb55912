import { describe, expect, it } from 'vitest';
import { formatAddress, parseAddress } from '../../../shared/address.ts';
import type { ListenerConfig } from '../../../supervisor/config/config.ts';
import { FdStore } from '../../../supervisor/sockets/fd-store.ts';
import { FakeOs } from '../os/fake-os.ts';

function listener(name: string, address: string, extra: Partial<ListenerConfig> = {}): ListenerConfig {
  const parsed = parseAddress(address);
  return { name, address: parsed, key: formatAddress(parsed), backlog: 511, ...extra };
}

const http = listener('http', '127.0.0.1:8080');
const admin = listener('admin', 'unix:/run/app/admin.sock', { backlog: 16, mode: 0o600 });
const metrics = listener('metrics', '127.0.0.1:9100');

function setup() {
  const os = new FakeOs();
  return { os, store: new FdStore(os) };
}

describe('FdStore.provide', () => {
  it('binds new listeners with their backlog and mode, in config order', () => {
    const { os, store } = setup();
    const got = store.provide([http, admin]);
    expect(got.map((l) => [l.name, l.key, l.fd])).toEqual([
      ['http', '127.0.0.1:8080', os.fdOf('127.0.0.1:8080')],
      ['admin', 'unix:/run/app/admin.sock', os.fdOf('unix:/run/app/admin.sock')],
    ]);
    expect(os.listens.map((l) => [l.backlog, l.mode])).toEqual([
      [511, undefined],
      [16, 0o600],
    ]);
  });

  it('keeps what it already holds and binds only what is new', () => {
    const { os, store } = setup();
    const [first] = store.provide([http]);
    const again = store.provide([metrics, http]);
    expect(again[1]).toBe(first);
    expect(os.listens.map((l) => formatAddress(l.address))).toEqual(['127.0.0.1:8080', '127.0.0.1:9100']);
  });

  it('on a failed bind closes what that call bound, keeps what was held, and names listener and code', () => {
    const { os, store } = setup();
    store.provide([http]);
    os.busy.add('127.0.0.1:9100');
    const fresh = listener('fresh', '127.0.0.1:7000');
    expect(() => store.provide([http, fresh, metrics])).toThrow(
      expect.objectContaining({
        code: 'ERR_LISTENER',
        message: expect.stringMatching(/^cannot listen on 127\.0\.0\.1:9100 \(listener 'metrics'\): EADDRINUSE: /),
      }),
    );
    expect(os.closed).toEqual([os.fdOf('127.0.0.1:7000')]);
    expect(store.all().map((l) => l.name)).toEqual(['http']);
    // The failed call left nothing behind: a retry binds the fresh one again.
    os.busy.clear();
    store.provide([http, fresh, metrics]);
    expect(os.listens.filter((l) => formatAddress(l.address) === '127.0.0.1:7000')).toHaveLength(2);
  });
});

describe('FdStore pin, retain and release', () => {
  it('closes exactly the listeners neither pinned nor used by a live generation', () => {
    const { os, store } = setup();
    const [h, a, m] = store.provide([http, admin, metrics]);
    store.pin([h!, a!, m!]);
    store.retain(1, [h!, a!, m!]);
    // A new configuration without admin and metrics; generation 2 uses only http.
    store.retain(2, [h!]);
    store.pin([h!]);
    expect(os.closed).toEqual([]);
    store.release(1);
    expect(os.closed.sort()).toEqual([a!.fd, m!.fd].sort());
    expect(store.all()).toEqual([h]);
    store.release(2);
    expect(os.closed).toHaveLength(2);
  });

  it('keeps a listener while any generation still retains it', () => {
    const { os, store } = setup();
    const [m] = store.provide([metrics]);
    store.retain(1, [m!]);
    store.retain(2, [m!]);
    store.pin([]);
    store.release(1);
    expect(os.closed).toEqual([]);
    store.release(2);
    expect(os.closed).toEqual([m!.fd]);
  });

  it('closeAll closes everything held', () => {
    const { os, store } = setup();
    store.provide([http, admin]);
    store.closeAll();
    expect(os.open).toEqual([]);
    expect(store.all()).toEqual([]);
  });
});

describe('FdStore.request', () => {
  it('returns the held listener for a configured address, whatever the policy', () => {
    const { os, store } = setup();
    const [h] = store.provide([http]);
    expect(store.request('localhost:8080', 'none')).toBe(h);
    expect(store.request('8080', 'none')).toBe(h);
    expect(os.listens).toHaveLength(1);
  });

  it('finds a port-0 listener by its bound address as well as by its configured one', () => {
    const { store } = setup();
    const [any] = store.provide([listener('ephemeral', '127.0.0.1:0')]);
    const bound = formatAddress(any!.bound);
    expect(bound).not.toBe('127.0.0.1:0');
    expect(store.request(bound, 'none')).toBe(any);
    expect(store.request('127.0.0.1:0', 'none')).toBe(any);
  });

  it("'loopback' binds local addresses and refuses others", () => {
    const { os, store } = setup();
    const local = store.request('127.0.0.1:3000', 'loopback');
    expect(local).toMatchObject({ name: '127.0.0.1:3000', key: '127.0.0.1:3000', fd: os.fdOf('127.0.0.1:3000') });
    expect(store.request('[::1]:3000', 'loopback').key).toBe('[::1]:3000');
    expect(store.request('unix:/tmp/x.sock', 'loopback').key).toBe('unix:/tmp/x.sock');
    expect(() => store.request('0.0.0.0:3000', 'loopback')).toThrow(
      expect.objectContaining({
        code: 'ERR_LISTENER',
        message: "refusing to bind 0.0.0.0:3000 at a generation's request: runtime-listeners is 'loopback'; add it to listeners in the config",
      }),
    );
    // Asked again, the same socket.
    expect(store.request('127.0.0.1:3000', 'loopback')).toBe(local);
    expect(os.listens).toHaveLength(3);
  });

  it("'any' binds any address; 'none' refuses even loopback", () => {
    const { store } = setup();
    expect(store.request('0.0.0.0:3000', 'any').key).toBe('0.0.0.0:3000');
    expect(() => store.request('127.0.0.1:3001', 'none')).toThrow(/runtime-listeners is 'none'/);
  });

  it('reports an unparsable address and a failed bind as ERR_LISTENER', () => {
    const { os, store } = setup();
    expect(() => store.request('example.com:80', 'any')).toThrow(
      expect.objectContaining({ code: 'ERR_LISTENER', message: expect.stringContaining("invalid address 'example.com:80'") }),
    );
    os.busy.add('127.0.0.1:3000');
    expect(() => store.request('127.0.0.1:3000', 'loopback')).toThrow(/cannot listen on 127\.0\.0\.1:3000 .*EADDRINUSE/);
    expect(store.all()).toEqual([]);
  });
});

describe('FdStore.adopt', () => {
  const tcp = (port: number) => ({ kind: 'tcp' as const, host: '127.0.0.1', port });
  const anyPort = listener('http', '127.0.0.1:0');

  it('a listener takes an adopted socket by name, and keeps it on every later provide', () => {
    const { os, store } = setup();
    store.adopt([{ fd: 3, name: 'http', bound: tcp(47000), origin: 'fd-store' }]);
    const first = store.provide([anyPort]);
    store.pin(first);
    const again = store.provide([anyPort]);
    store.pin(again);
    expect(again.map((l) => [l.name, l.fd, l.origin])).toEqual([['http', 3, 'fd-store']]);
    expect(os.listens).toEqual([]);
    expect(os.closed).toEqual([]);
  });

  it('passes a socket unit’s unclaimed sockets after the configured ones and never closes them', () => {
    const { os, store } = setup();
    store.adopt([
      { fd: 3, name: 'web', bound: tcp(8080), origin: 'systemd' },
      { fd: 4, name: 'spare', bound: tcp(8081), origin: 'systemd' },
    ]);
    const got = store.provide([listener('web', '127.0.0.1:0'), metrics]);
    store.pin(got);
    expect(got.map((l) => [l.name, l.fd])).toEqual([
      ['web', 3],
      ['metrics', os.fdOf('127.0.0.1:9100')],
      ['spare', 4],
    ]);
    store.pin(store.provide([metrics]));
    store.closeAll();
    expect(os.closed).toEqual([os.fdOf('127.0.0.1:9100')]);
  });

  it('closes adopted sockets of its own that no listener takes, and reports each closed socket', () => {
    const os = new FakeOs();
    const closed: string[] = [];
    const store = new FdStore(os, (l) => closed.push(l.name));
    store.adopt([{ fd: 3, name: 'old', bound: tcp(9000), origin: 'fd-store' }]);
    store.pin(store.provide([http]));
    expect(os.closed).toEqual([3]);
    expect(closed).toEqual(['old']);
  });

  it('hands over without closing anything', () => {
    const { os, store } = setup();
    store.pin(store.provide([http, admin]));
    store.handOver();
    store.closeAll();
    expect(os.closed).toEqual([]);
    expect(store.all()).toEqual([]);
  });
});
