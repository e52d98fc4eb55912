/**
 * TLS and HTTP/2 stats of a listener, Envoy-style names in the shared segment:
 * `listener.<name>.ssl.handshake`, `.ssl.session_reused`, `.ssl.versions.TLSv1_3`,
 * `.ssl.alpn.h2`, `.ssl.handshake_error.<reason>`, `.ssl.sni.<exact|wildcard|default>`, and
 * `http.<name>.http2.streams_active`, `.sessions_active`, `.goaway_sent`.
 */
import type { Counter, Gauge } from '../../shared/stats/index.ts';
import { statSegment } from '../telemetry/proxy-stats.ts';
import type { StatsStore } from '../telemetry/stats-store.ts';
import type { SniMatch } from './sni.ts';

/** Handshake failures by reason: a fixed set, so a hostile client cannot mint stat names. */
export const HANDSHAKE_ERRORS = ['no_shared_cipher', 'unsupported_protocol', 'no_client_cert', 'bad_client_cert', 'not_tls', 'timeout', 'reset', 'other'] as const;
export type HandshakeError = (typeof HANDSHAKE_ERRORS)[number];

export interface TlsStats {
  handshake: Counter;
  sessionReused: Counter;
  versions: Record<string, Counter>;
  alpn: Record<string, Counter>;
  errors: Record<HandshakeError, Counter>;
  sni: Record<SniMatch, Counter>;
}

export interface Http2Stats {
  streamsActive: Gauge;
  sessionsActive: Gauge;
  streamsTotal: Counter;
  goawaySent: Counter;
}

export function tlsStats(store: StatsStore, listener: string, alpn: readonly string[]): TlsStats {
  const p = `listener.${statSegment(listener)}.ssl`;
  const map = <K extends string>(keys: readonly K[], name: (k: K) => string): Record<K, Counter> =>
    Object.fromEntries(keys.map((k) => [k, store.counter(name(k))])) as Record<K, Counter>;
  return {
    handshake: store.counter(`${p}.handshake`),
    sessionReused: store.counter(`${p}.session_reused`),
    versions: map(['TLSv1.2', 'TLSv1.3'], (v) => `${p}.versions.${statSegment(v)}`),
    alpn: map([...alpn, 'none'], (a) => `${p}.alpn.${statSegment(a)}`),
    errors: map(HANDSHAKE_ERRORS, (r) => `${p}.handshake_error.${r}`),
    sni: map(['exact', 'wildcard', 'default'] as const, (m) => `${p}.sni.${m}`),
  };
}

export function http2Stats(store: StatsStore, listener: string): Http2Stats {
  const p = `http.${statSegment(listener)}.http2`;
  return {
    streamsActive: store.gauge(`${p}.streams_active`),
    sessionsActive: store.gauge(`${p}.sessions_active`),
    streamsTotal: store.counter(`${p}.streams_total`),
    goawaySent: store.counter(`${p}.goaway_sent`),
  };
}

/** The reason bucket of a failed handshake (Node's `tlsClientError`). */
export function handshakeErrorReason(err: NodeJS.ErrnoException): HandshakeError {
  const code = err.code ?? '';
  const text = `${code} ${err.message}`;
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || /timed? ?out/i.test(err.message)) return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket disconnected|hang up/i.test(err.message)) return 'reset';
  if (/NO_SHARED_CIPHER|NO_SUITABLE_SIGNATURE|NO_SHARED_GROUP/i.test(text)) return 'no_shared_cipher';
  if (/UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW|VERSION_TOO_HIGH|PROTOCOL_VERSION/i.test(text)) return 'unsupported_protocol';
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(text)) return 'no_client_cert';
  if (/CERTIFICATE_VERIFY_FAILED|UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERT_/i.test(text)) return 'bad_client_cert';
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG|RECORD_LAYER/i.test(text)) return 'not_tls';
  return 'other';
}
