import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { SniSelector } from '../../proxy/tls/sni.ts';
import { handshakeErrorReason } from '../../proxy/tls/tls-stats.ts';

describe('SNI selection', () => {
  const [a, b, c] = [tls.createSecureContext(), tls.createSecureContext(), tls.createSecureContext()];
  const sni = new SniSelector([
    { names: ['api.example.com', '*.example.com'], context: a },
    { names: ['*.example.com', 'www.example.com'], context: b },
    { names: ['other.test'], context: c },
  ], 2);

  it('an exact name beats a wildcard, the first certificate naming a host wins, case and a trailing dot do not matter', () => {
    expect(sni.select('www.example.com')).toEqual({ context: b, match: 'exact' });
    expect(sni.select('API.Example.COM.')).toEqual({ context: a, match: 'exact' });
    expect(sni.select('shop.example.com')).toEqual({ context: a, match: 'wildcard' });
  });

  it('a wildcard covers one label only; anything else gets the default', () => {
    expect(sni.select('a.b.example.com')).toEqual({ context: c, match: 'default' });
    expect(sni.select('example.com')).toEqual({ context: c, match: 'default' });
    expect(sni.select('')).toEqual({ context: c, match: 'default' });
  });
});

describe('handshake error reasons', () => {
  const reason = (code: string, message = '') => handshakeErrorReason(Object.assign(new Error(message), { code }));
  it('puts OpenSSL and socket errors into a fixed set of buckets', () => {
    expect(reason('ERR_SSL_UNSUPPORTED_PROTOCOL')).toBe('unsupported_protocol');
    expect(reason('ERR_SSL_NO_SHARED_CIPHER')).toBe('no_shared_cipher');
    expect(reason('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')).toBe('no_client_cert');
    expect(reason('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA')).toBe('bad_client_cert');
    expect(reason('ERR_SSL_HTTP_REQUEST')).toBe('not_tls');
    expect(reason('ERR_SSL_WRONG_VERSION_NUMBER')).toBe('not_tls');
    expect(reason('ERR_TLS_HANDSHAKE_TIMEOUT')).toBe('timeout');
    expect(reason('ECONNRESET', 'socket hang up')).toBe('reset');
    expect(reason('ERR_SSL_SOMETHING_NEW')).toBe('other');
  });
});
