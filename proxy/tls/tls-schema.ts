/**
 * The TLS and HTTP/2 keys of the proxy's configuration: `tls:` and `http2:` on a listener, `tls:`
 * on a cluster (upstream), and the app-wide `tls:` (ticket key rotation, expiry warning, watch
 * debounce). File paths are relative to the config file.
 */
import * as v from 'valibot';
import { bytes as size, duration } from '../../shared/config-units.ts';
import { strictObject } from '../../shared/schema.ts';

const version = v.picklist(['TLSv1.2', 'TLSv1.3'], 'expected TLSv1.2 or TLSv1.3');
const text = v.pipe(v.string(), v.minLength(1));
const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

const certificate = strictObject({
  /** PEM chain: the leaf first, then its intermediates. */
  cert: text,
  /** PEM private key (unencrypted). */
  key: text,
  /** Names this certificate answers by SNI (exact or `*.suffix`). @default the certificate's DNS subjectAltNames */
  server_names: v.optional(v.pipe(v.array(text), v.minLength(1))),
  /** The certificate for a client that sends no SNI or an unknown name. @default the first */
  default: v.optional(v.boolean(), false),
});

/** Downstream TLS on an `http` or `tcp` listener. */
export const downstreamTls = v.pipe(
  strictObject({
    certificates: v.pipe(v.array(certificate), v.minLength(1, 'expected at least one certificate')),
    /** @default TLSv1.2 */
    min_version: v.optional(version, 'TLSv1.2'),
    /** @default TLSv1.3 */
    max_version: v.optional(version, 'TLSv1.3'),
    /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults). @default Node's default list */
    ciphers: v.optional(text),
    /** ALPN protocols offered, in order of preference. @default [h2, http/1.1] on http (http2 on), [http/1.1] else; none on tcp */
    alpn: v.optional(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(255)))),
    /** Verify client certificates against a CA. */
    client_auth: v.optional(
      strictObject({
        /** PEM file of the CAs client certificates must chain to. */
        ca: text,
        /** Refuse a client without a certificate. @default true */
        required: v.optional(v.boolean(), true),
        /** Request header that carries the verified subject upstream (a client's own is removed). @default x-client-cert-subject */
        subject_header: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9-]{1,64}$/, 'expected a header name of 1-64 letters, digits or "-"')), 'x-client-cert-subject'),
      }),
    ),
    /** Reload when a certificate, key or CA file changes (its directory is watched: rename-replace works). @default false */
    watch: v.optional(v.boolean(), false),
    /** Session tickets (resumption across generations: the supervisor keeps the keys). @default true */
    session_tickets: v.optional(v.boolean(), true),
    /** Lifetime of a TLS session (ticket hint). @default 5m */
    session_timeout: v.optional(duration, 300_000),
    /** Time a client has to finish its handshake. @default 10s */
    handshake_timeout: v.optional(duration, 10_000),
  }),
  v.forward(
    v.check((t) => !(t.min_version === 'TLSv1.3' && t.max_version === 'TLSv1.2'), 'max_version is below min_version'),
    ['max_version'],
  ),
  v.forward(
    v.check((t) => t.certificates.filter((c) => c.default).length <= 1, 'at most one certificate may be the default'),
    ['certificates'],
  ),
);

/** HTTP/2 on a TLS `http` listener (HTTP/1.1 stays available on the same port). */
export const http2Options = strictObject({
  /** @default true when the listener has tls */
  enabled: v.optional(v.boolean(), true),
  /** SETTINGS_MAX_CONCURRENT_STREAMS. @default 100 */
  max_concurrent_streams: v.optional(int(1, 2 ** 31 - 1), 100),
  /** SETTINGS_MAX_HEADER_LIST_SIZE. @default the listener's max_header_size */
  max_header_list_size: v.optional(size),
  /** SETTINGS_INITIAL_WINDOW_SIZE of each stream. @default 65535 */
  initial_window_size: v.optional(int(0, 2 ** 31 - 1), 65_535),
  /** Memory a session may use for its buffers before new streams are refused. @default 10MiB */
  max_session_memory: v.optional(size, 10 * 1024 * 1024),
});

/** TLS to a cluster's endpoints. */
export const upstreamTls = v.pipe(
  strictObject({
    /** PEM file of the CAs endpoints' certificates must chain to. @default the system's CAs */
    ca: v.optional(text),
    /** SNI and the name checked in the endpoint's certificate. @default the endpoint's host */
    server_name: v.optional(text),
    /** Client certificate for the upstream (cert + key PEM files). */
    cert: v.optional(text),
    key: v.optional(text),
    /** Check the endpoint's certificate (turn off only for tests). @default true */
    verify: v.optional(v.boolean(), true),
    min_version: v.optional(version, 'TLSv1.2'),
  }),
  v.check((t) => (t.cert === undefined) === (t.key === undefined), 'cert and key go together'),
);

/** App-wide TLS settings. */
export const appTls = strictObject({
  /** How long a session ticket key serves before the supervisor makes a new one. @default 12h */
  ticket_key_rotation: v.optional(duration, 12 * 3_600_000),
  /** Warn at start when a certificate expires within this. @default 30 days */
  expiry_warning: v.optional(duration, 30 * 86_400_000),
  /** After a watched file changes, wait this long for the rest of a renewal before reloading. @default 1s */
  watch_debounce: v.optional(duration, 1_000),
});

export type DownstreamTlsConfig = v.InferOutput<typeof downstreamTls>;
export type Http2Config = v.InferOutput<typeof http2Options>;
export type UpstreamTlsConfig = v.InferOutput<typeof upstreamTls>;
export type AppTlsConfig = v.InferOutput<typeof appTls>;
