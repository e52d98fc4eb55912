// The lean upstream client stands on node:http's own parser, reached through `_http_common`
// (proxy/http/http1-parser.ts). Every Node this project supports has it in the shape used: if one
// stops having it, the proxy falls back to undici for every request, and this says so first.
import { describe, expect, it } from 'vitest';
import { HTTPParser, kOnBody, kOnHeaders, kOnHeadersComplete, kOnMessageComplete, leanClientAvailable } from '../../../proxy/http/http1-parser.ts';

describe('http1-parser', () => {
  it(`node ${process.version} has the parser, its four hooks distinct, and it parses a response`, () => {
    expect(leanClientAvailable).toBe(true);
    expect(new Set([kOnHeaders, kOnHeadersComplete, kOnBody, kOnMessageComplete]).size).toBe(4);
    const parser = new HTTPParser!();
    parser.initialize(HTTPParser!.RESPONSE, {}, 0, 0);
    const seen: unknown[] = [];
    parser[kOnHeadersComplete] = (_major: number, _minor: number, headers: string[], _method: unknown, _url: unknown, status: number) => void seen.push(status, headers);
    parser[kOnBody] = (chunk: Buffer) => void seen.push(chunk.toString('latin1'));
    parser[kOnMessageComplete] = () => void seen.push('end');
    const wire = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Up: a\r\n\r\nhi');
    expect(parser.execute(wire)).toBe(wire.length);
    parser.close();
    expect(seen).toEqual([200, ['Content-Length', '2', 'X-Up', 'a'], 'hi', 'end']);
  });
});
