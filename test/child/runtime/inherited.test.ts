import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { matchInherited, targetAddress } from '../../../child/runtime/inherited.ts';
import type { InheritedListener } from '../../../shared/launch-env.ts';

const http: InheritedListener = { fd: 3, name: 'http', address: '127.0.0.1:8080' };
const v6: InheritedListener = { fd: 4, name: 'v6', address: '[::1]:8443' };
const sock: InheritedListener = { fd: 5, name: 'admin', address: 'unix:/run/app/admin.sock' };
const bare: InheritedListener = { fd: 6, name: 'fd6', address: '' };
const listeners = [http, v6, sock, bare];

describe('matchInherited', () => {
  it('finds a listener by name', () => {
    expect(matchInherited(listeners, { name: 'admin' })).toBe(sock);
    expect(matchInherited(listeners, { name: 'fd6' })).toBe(bare);
    expect(matchInherited(listeners, { name: 'nope' })).toBeUndefined();
  });

  it('prefers the name, and falls back to the address when no listener has that name', () => {
    expect(matchInherited(listeners, { name: 'http', address: '[::1]:8443' })).toBe(http);
    expect(matchInherited(listeners, { name: 'nope', address: '[::1]:8443' })).toBe(v6);
  });

  it('finds a listener by exact canonical address', () => {
    expect(matchInherited(listeners, { address: '127.0.0.1:8080' })).toBe(http);
    expect(matchInherited(listeners, { address: 'unix:/run/app/admin.sock' })).toBe(sock);
    expect(matchInherited(listeners, { address: '127.0.0.2:8080' })).toBeUndefined();
    expect(matchInherited(listeners, { address: '[::1]:8080' })).toBeUndefined();
  });

  it('matches a wildcard address by port alone (listen(3000) means every interface)', () => {
    expect(matchInherited(listeners, { address: '[::]:8080' })).toBe(http);
    expect(matchInherited(listeners, { address: '0.0.0.0:8443' })).toBe(v6);
    expect(matchInherited(listeners, { address: '[::]:9999' })).toBeUndefined();
  });

  it('never matches port 0 by port', () => {
    const ephemeral: InheritedListener = { fd: 7, name: 'any', address: '127.0.0.1:0' };
    expect(matchInherited([ephemeral], { address: '[::]:0' })).toBeUndefined();
    expect(matchInherited([ephemeral], { address: '0.0.0.0:0' })).toBeUndefined();
  });

  it('matches nothing without a name or an address', () => {
    expect(matchInherited(listeners, {})).toBeUndefined();
  });
});

describe('targetAddress', () => {
  it('reads a port alone as every interface', () => {
    expect(targetAddress({ port: 3000 })).toBe('[::]:3000');
    expect(targetAddress({ port: '3000' })).toBe('[::]:3000');
    expect(targetAddress({ port: 3000, host: '' })).toBe('[::]:3000');
  });

  it('reads a host and port', () => {
    expect(targetAddress({ port: 3000, host: '127.0.0.1' })).toBe('127.0.0.1:3000');
    expect(targetAddress({ port: 3000, host: 'localhost' })).toBe('127.0.0.1:3000');
    expect(targetAddress({ port: 3000, host: '0.0.0.0' })).toBe('0.0.0.0:3000');
    expect(targetAddress({ port: 3000, host: '::1' })).toBe('[::1]:3000');
    expect(targetAddress({ port: 3000, host: '0:0:0:0:0:0:0:1' })).toBe('[::1]:3000');
  });

  it('reads a Unix socket path', () => {
    expect(targetAddress({ path: '/run/app/admin.sock' })).toBe('unix:/run/app/admin.sock');
  });

  it('resolves a relative Unix socket path as Node does (against the working directory)', () => {
    expect(targetAddress({ path: 'app.sock' })).toBe(`unix:${path.resolve('app.sock')}`);
    expect(targetAddress({ path: '/run/app/../admin.sock' })).toBe('unix:/run/admin.sock');
  });

  it('gives undefined for what it does not handle', () => {
    expect(targetAddress({})).toBeUndefined();
    expect(targetAddress({ port: 'http' })).toBeUndefined();
    expect(targetAddress({ port: 80.5 })).toBeUndefined();
    expect(targetAddress({ port: 3000, host: 'example.com' })).toBeUndefined();
    expect(targetAddress({ port: 70_000 })).toBeUndefined();
  });

  it('feeds matchInherited: listen(8080) finds the inherited 127.0.0.1:8080', () => {
    expect(matchInherited(listeners, { address: targetAddress({ port: 8080 }) as string })).toBe(http);
    expect(matchInherited(listeners, { address: targetAddress({ path: '/run/app/admin.sock' }) as string })).toBe(sock);
  });
});
