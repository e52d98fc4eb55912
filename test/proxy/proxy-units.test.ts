import { describe, expect, it } from 'vitest';
import { downstreamResponseHeaders, LoadBalancer, parseEndpoint, requestIdOf, Router, upstreamRequestHeaders } from '../../proxy/index.ts';

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
