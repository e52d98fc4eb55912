import { describe, expect, it } from 'vitest';
import { isFieldName } from '../../proxy/http/field-name.ts';
import { downstreamResponseHeaders, globMatch, LoadBalancer, parseEndpoint, parseStatFilter, requestIdOf, requestTarget, Router, upstreamRequestHeaders } from '../../proxy/index.ts';

describe('router', () => {
  const router = new Router([
    { match: { host: ['api.example.com', '*.svc.local'], prefix: '/v1/' }, cluster: 'api' },
    { match: { prefix: '/static/' }, direct_response: { status: 200, body: 'x', headers: {} } },
    { match: { prefix: '/' }, cluster: 'web' },
  ]);
  it('matches the first route by host (port ignored, case-insensitive, wildcards) and path prefix', () => {
    expect(router.match('API.example.com:8080', '/v1/users')?.cluster).toBe('api');
    expect(router.match('a.svc.local', '/v1/x')?.cluster).toBe('api');
    expect(router.match('svc.local', '/v1/x')?.cluster).toBe('web');
    expect(router.match('other', '/v1/users')?.cluster).toBe('web');
    expect(router.match(undefined, '/static/a.css')?.direct?.status).toBe(200);
    expect(new Router([{ match: { prefix: '/only' }, cluster: 'x' }]).match('h', '/other')).toBeUndefined();
  });
});

describe('headers', () => {
  it('drops hop-by-hop fields and those Connection lists, appends X-Forwarded-For', () => {
    const out = upstreamRequestHeaders(
      ['Host', 'h', 'Connection', 'close, X-Secret', 'X-Secret', 's', 'Keep-Alive', '5', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'TE', 'trailers', 'X-Forwarded-For', '1.1.1.1', 'Accept', '*/*'],
      { remoteAddress: '::ffff:127.0.0.1', proto: 'http', requestId: 'rid' },
    );
    expect(out).toEqual(['Host', 'h', 'Accept', '*/*', 'x-forwarded-for', '1.1.1.1, 127.0.0.1', 'x-forwarded-proto', 'http', 'x-request-id', 'rid']);
    expect(downstreamResponseHeaders({ connection: 'keep-alive, x-a', 'x-a': '1', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' })).toEqual({
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
    });
  });
  it('keeps a sane client request id, else makes one', () => {
    expect(requestIdOf(['X-Request-Id', 'abc'])).toBe('abc');
    expect(requestIdOf(['X-Request-Id', 'bad id with spaces'])).toMatch(/^[0-9a-f-]{36}$/);
  });
  it('drops hop-by-hop and Connection-listed fields whatever their case, keeps the rest as spelled', () => {
    const raw = ['Host', 'h', 'KEEP-ALIVE', 'x', 'Connection', 'X-Custom-Long-Name', 'x-custom-long-name', 'v', 'Accept', '*/*', 'X-Forwarded-For', '10.0.0.1', 'TE', 'trailers'];
    expect(upstreamRequestHeaders(raw, { remoteAddress: '::ffff:127.0.0.1', proto: 'http', requestId: 'r' })).toEqual([
      'Host', 'h', 'Accept', '*/*', 'x-forwarded-for', '10.0.0.1, 127.0.0.1', 'x-forwarded-proto', 'http', 'x-request-id', 'r',
    ]);
    expect(upstreamRequestHeaders(['HOST', 'client', 'Accept', '*/*'], { remoteAddress: undefined, proto: 'http', requestId: 'r', host: 'authority' })).toEqual([
      'host', 'authority', 'Accept', '*/*', 'x-forwarded-proto', 'http', 'x-request-id', 'r',
    ]);
  });
  it('compares field names without case (isFieldName)', () => {
    expect(isFieldName('Content-Length', 'content-length')).toBe(true);
    expect(isFieldName('CONTENT-LENGTH', 'content-length')).toBe(true);
    expect(isFieldName('Content-Lengths', 'content-length')).toBe(false);
    expect(isFieldName('Content_Length', 'content-length')).toBe(false);
    expect(isFieldName('HTTP2-Settings', 'http2-settings')).toBe(true);
    expect(isFieldName('Hosu', 'host')).toBe(false);
  });
  it('makes version 4 UUIDs, all different, across refills of its random pool', () => {
    const ids = Array.from({ length: 1000 }, () => requestIdOf([]));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
  it('keeps Upgrade for a WebSocket handshake', () => {
    const out = upstreamRequestHeaders(['Connection', 'Upgrade', 'Upgrade', 'websocket'], { remoteAddress: undefined, proto: 'http', requestId: 'r', upgrade: true });
    expect(out).toEqual(['Upgrade', 'websocket', 'x-forwarded-proto', 'http', 'x-request-id', 'r', 'connection', 'upgrade']);
  });
});

describe('load balancing', () => {
  const hosts = () => [{ healthy: true, active: 0, id: 'a' }, { healthy: true, active: 0, id: 'b' }, { healthy: true, active: 0, id: 'c' }];
  it('round-robin skips unhealthy endpoints and returns undefined when none is healthy', () => {
    const h = hosts();
    const lb = new LoadBalancer('round_robin', h);
    expect([lb.pick(), lb.pick(), lb.pick(), lb.pick()].map((x) => x?.id)).toEqual(['a', 'b', 'c', 'a']);
    h[1]!.healthy = false;
    expect([lb.pick(), lb.pick(), lb.pick()].map((x) => x?.id)).toEqual(['c', 'a', 'c']);
    for (const x of h) x.healthy = false;
    expect(lb.pick()).toBeUndefined();
  });
  it('least-request prefers the less loaded endpoint and avoids the one that just failed', () => {
    const h = hosts();
    h[0]!.active = 10;
    h[1]!.active = 10;
    const lb = new LoadBalancer('least_request', h);
    const picks = Array.from({ length: 300 }, () => lb.pick()!.id);
    expect(picks.filter((p) => p === 'c').length).toBeGreaterThan(150);
    expect(Array.from({ length: 50 }, () => lb.pick(h[2])!.id)).not.toContain('c');
  });
  it('parses endpoints', () => {
    expect(parseEndpoint('[::1]:80')).toMatchObject({ kind: 'tcp', host: '::1', port: 80 });
    expect(parseEndpoint('backend.internal:8080')).toMatchObject({ kind: 'tcp', host: 'backend.internal', port: 8080 });
    expect(() => parseEndpoint('x:0')).toThrow(/port 1-65535/);
  });
});

describe('stat filter', () => {
  it('a glob matches the whole name: * any run, ? one character, nothing else special', () => {
    expect(globMatch('http.*.downstream_rq_?xx', 'http.web.downstream_rq_2xx')).toBe(true);
    expect(globMatch('http.*', 'cluster.http.x')).toBe(false);
    expect(globMatch('*rq*', 'upstream_rq_total')).toBe(true);
    expect(globMatch('a.b', 'a.b')).toBe(true);
    expect(globMatch('a.b', 'axb')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('?', '')).toBe(false);
  });

  it('refuses regular expressions and filters over 256 characters with a reason', () => {
    expect(parseStatFilter('(.*){1,7}X')).toEqual({ error: expect.stringMatching(/regular expressions are not accepted/) });
    expect(parseStatFilter('^http\\.')).toEqual({ error: expect.stringMatching(/glob/) });
    expect(parseStatFilter('a'.repeat(257))).toEqual({ error: 'filter is 257 characters long; at most 256 are accepted' });
    expect('match' in parseStatFilter('a'.repeat(256))).toBe(true);
  });

  it('its worst case stays linear in practice: 256 characters of stars against a long name in well under 5 ms each', () => {
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) globMatch(`${'*a'.repeat(127)}Q`, 'a'.repeat(200));
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('request target', () => {
  const head = (url: string, headers: string[], version = [1, 1], method = 'GET') => requestTarget({ method, url, rawHeaders: headers, httpVersionMajor: version[0]!, httpVersionMinor: version[1]! });
  it('origin-form by Host, absolute-form by its authority (which replaces Host), OPTIONS *', () => {
    expect(head('/a?b', ['Host', 'x.example'])).toEqual({ host: 'x.example', path: '/a?b' });
    expect(head('http://y.example:81/p?q', ['Host', 'x.example'])).toEqual({ host: 'y.example:81', path: '/p?q', rewriteHost: 'y.example:81' });
    expect(head('HTTPS://y.example?q', [])).toEqual({ host: 'y.example', path: '/?q', rewriteHost: 'y.example' });
    expect(head('*', ['Host', 'x'], [1, 1], 'OPTIONS')).toEqual({ host: 'x', path: '*' });
    expect(head('/', ['Host', '[::1]:8080'])).toEqual({ host: '[::1]:8080', path: '/' });
  });

  it('refuses two Host lines, an invalid Host or authority, other targets, other HTTP versions', () => {
    expect(head('/', ['Host', 'a', 'host', 'a'])).toEqual({ error: 'duplicate Host header' });
    expect(head('/', ['Host', 'a b'])).toEqual({ error: "invalid Host header 'a b'" });
    expect(head('http://u@h/', [])).toMatchObject({ error: expect.stringMatching(/invalid authority/) });
    expect(head('http:///p', [])).toMatchObject({ error: expect.stringMatching(/invalid authority/) });
    expect(head('nowhere', [])).toMatchObject({ error: expect.stringMatching(/neither a path/) });
    expect(head('*', [])).toMatchObject({ error: expect.stringMatching(/neither a path/) });
    expect(head('/', ['Host', 'a'], [2, 0])).toMatchObject({ error: expect.stringMatching(/unsupported HTTP version 2\.0/) });
    expect(head('/', [], [0, 9])).toMatchObject({ error: expect.stringMatching(/unsupported HTTP version 0\.9/) });
  });

  it('sends the authority upstream as the only Host', () => {
    const out = upstreamRequestHeaders(['Host', 'x.example', 'Accept', '*/*'], { remoteAddress: '127.0.0.1', proto: 'http', requestId: 'r', host: 'y.example' });
    expect(out.filter((_, i) => i % 2 === 0 && out[i]!.toLowerCase() === 'host').length).toBe(1);
    expect(out.slice(0, 2)).toEqual(['host', 'y.example']);
  });
});
