import { describe, expect, it } from 'vitest';
import { readReply } from '../../../supervisor/cli/control-reply.ts';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const text = (r: ReturnType<typeof readReply>) => (r && !(r instanceof Error) ? { status: r.status, body: r.body.toString() } : r);

describe('readReply', () => {
  it('reads a Content-Length reply once all of it has come, and not before', () => {
    const whole = 'HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":false}';
    expect(readReply(bytes(whole.slice(0, 20)), false)).toBeUndefined();
    expect(readReply(bytes(whole.slice(0, -3)), false)).toBeUndefined();
    // Bytes past the length are not the body's.
    expect(text(readReply(bytes(whole), false))).toEqual({ status: 409, body: '{"ok":false' });
  });

  it('reads a chunked body, its extensions and a split last chunk included', () => {
    const whole = 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=1\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n';
    expect(readReply(bytes(whole.slice(0, -8)), false)).toBeUndefined();
    expect(text(readReply(bytes(whole), false))).toEqual({ status: 200, body: '{"a":1}' });
    expect(readReply(bytes(whole.slice(0, -8)), true)).toMatchObject({ message: 'a chunked body cut short' });
    expect(readReply(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), false)).toMatchObject({ message: 'a chunk size of "zz"' });
  });

  it('without a length, the body is what came before the close', () => {
    expect(readReply(bytes('HTTP/1.0 200 OK\r\n\r\n{}'), false)).toBeUndefined();
    expect(text(readReply(bytes('HTTP/1.0 200 OK\r\n\r\n{}'), true))).toEqual({ status: 200, body: '{}' });
  });

  it('says what came when it is not an HTTP/1.x reply or was cut short', () => {
    expect(readReply(bytes('SSH-2.0-OpenSSH\r\n\r\n'), false)).toMatchObject({ message: 'expected an HTTP/1.x status line, got "SSH-2.0-OpenSSH"' });
    expect(readReply(bytes('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'), false)).toMatchObject({ message: 'a header line without a name: "no colon here"' });
    expect(readReply(bytes('HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}'), false)).toMatchObject({ message: 'a Content-Length of "3"' });
    expect(readReply(bytes('HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n'), false)).toMatchObject({ message: 'a Content-Length of "-1"' });
    expect(readReply(bytes('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{}'), true)).toMatchObject({ message: 'a body of 2 bytes where Content-Length said 5' });
    expect(readReply(bytes('HTTP/1.1 200 OK\r\ncont'), true)).toMatchObject({ message: expect.stringMatching(/^a head cut short: "HTTP\/1.1 200 OK/) });
    expect(readReply(Buffer.alloc(17 * 1024, 'a'), false)).toMatchObject({ message: `no end of the head in ${17 * 1024} bytes` });
  });
});
