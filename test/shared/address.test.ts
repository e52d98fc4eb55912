import { describe, expect, it } from 'vitest';
import { formatAddress, isLocal, isWildcard, parseAddress } from '../../shared/address.ts';

const canonical = (text: string) => formatAddress(parseAddress(text));

describe('parseAddress', () => {
  it('parses IPv4 HOST:PORT', () => {
    expect(parseAddress('10.0.0.5:8080')).toEqual({ kind: 'tcp', host: '10.0.0.5', port: 8080 });
    expect(parseAddress('  0.0.0.0:0 ')).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 0 });
  });

  it('reads a port alone and localhost as IPv4 loopback', () => {
    expect(parseAddress('8080')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8080 });
    expect(parseAddress('localhost:3000')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 3000 });
  });

  it('parses bracketed IPv6 and normalises the host', () => {
    expect(parseAddress('[::1]:80')).toEqual({ kind: 'tcp', host: '::1', port: 80 });
    expect(parseAddress('[0:0:0:0:0:0:0:1]:80')).toEqual({ kind: 'tcp', host: '::1', port: 80 });
    expect(parseAddress('[2001:DB8:0:0:0:0:0:1]:443')).toEqual({ kind: 'tcp', host: '2001:db8::1', port: 443 });
    expect(parseAddress('[::]:8080')).toEqual({ kind: 'tcp', host: '::', port: 8080 });
  });

  it('parses Unix socket paths, with or without unix:, and normalises them', () => {
    expect(parseAddress('unix:/run/app/http.sock')).toEqual({ kind: 'unix', path: '/run/app/http.sock' });
    expect(parseAddress('/run/app/http.sock')).toEqual({ kind: 'unix', path: '/run/app/http.sock' });
    expect(parseAddress('unix:/run//app/./x/../http.sock')).toEqual({ kind: 'unix', path: '/run/app/http.sock' });
  });

  it('refuses what it cannot read, saying what was expected', () => {
    const expected = /^invalid address '.*': expected HOST:PORT with a numeric IPv4 host, \[IPv6\]:PORT, a port alone, unix:\/path or \/path$/;
    for (const bad of ['', 'example.com:80', '::1:80', '[::1]', '[127.0.0.1]:80', '127.0.0.1', '127.0.0.1:', ':80', '256.0.0.1:80', 'http://127.0.0.1:80']) {
      expect(() => parseAddress(bad), bad).toThrow(expected);
    }
  });

  it('refuses out-of-range ports and relative Unix paths', () => {
    expect(() => parseAddress('70000')).toThrow("invalid address '70000': port must be 0-65535");
    expect(() => parseAddress('127.0.0.1:65536')).toThrow(/port must be 0-65535/);
    expect(() => parseAddress('[::1]:99999')).toThrow(/port must be 0-65535/);
    expect(() => parseAddress('unix:run/app.sock')).toThrow("invalid address 'unix:run/app.sock': a Unix socket path must be absolute");
  });

  it('refuses an IPv6 zone id with the usual explanation, not a URL error', () => {
    expect(() => parseAddress('[fe80::1%eth0]:80')).toThrow(/^invalid address '\[fe80::1%eth0\]:80'/);
  });

  it('throws TypeError', () => {
    expect(() => parseAddress('nope')).toThrow(TypeError);
  });
});

describe('formatAddress', () => {
  it('round-trips canonical text', () => {
    for (const text of ['127.0.0.1:8080', '0.0.0.0:0', '[::1]:80', '[::]:443', '[2001:db8::1]:8443', 'unix:/run/app.sock']) {
      expect(canonical(text)).toBe(text);
    }
  });

  it('gives equal text for equal addresses', () => {
    expect(canonical('[0:0:0:0:0:0:0:1]:80')).toBe('[::1]:80');
    expect(canonical('localhost:80')).toBe('127.0.0.1:80');
    expect(canonical('80')).toBe('127.0.0.1:80');
    expect(canonical('/run/x/../app.sock')).toBe('unix:/run/app.sock');
  });

  it('brackets IPv6 hosts only', () => {
    expect(formatAddress({ kind: 'tcp', host: '::1', port: 9 })).toBe('[::1]:9');
    expect(formatAddress({ kind: 'tcp', host: '10.1.2.3', port: 9 })).toBe('10.1.2.3:9');
  });
});

describe('isLocal and isWildcard', () => {
  it('isLocal: loopback and Unix sockets only', () => {
    for (const text of ['127.0.0.1:1', '127.8.9.10:1', '[::1]:1', '8080', 'unix:/tmp/a.sock']) expect(isLocal(parseAddress(text)), text).toBe(true);
    for (const text of ['0.0.0.0:1', '[::]:1', '10.0.0.1:1', '[2001:db8::1]:1', '128.0.0.1:1']) expect(isLocal(parseAddress(text)), text).toBe(false);
  });

  it('isWildcard: 0.0.0.0 and :: only', () => {
    for (const text of ['0.0.0.0:80', '[::]:80', '[0:0:0:0:0:0:0:0]:80']) expect(isWildcard(parseAddress(text)), text).toBe(true);
    for (const text of ['127.0.0.1:80', '[::1]:80', 'unix:/tmp/a.sock']) expect(isWildcard(parseAddress(text)), text).toBe(false);
  });
});
