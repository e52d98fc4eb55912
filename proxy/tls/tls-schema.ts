/**
 * The TLS and HTTP/2 keys of the proxy's configuration: `tls:` and `http2:` on a listener, `tls:`
 * on a cluster (upstream), and the app-wide `tls:` (ticket key rotation, expiry warning, watch
 * debounce). File paths are relative to the config file.
 */
import { z } from 'zod';
import { bytes as size, duration } from '../../shared/config-units.ts';

const version = z.enum(['TLSv1.2', 'TLSv1.3'], { error: 'expected TLSv1.2 or TLSv1.3' });

const certificate = z.strictObject({
  /** PEM chain: the leaf first, then its intermediates. */
  cert: z.string().min(1),
  /** PEM private key (unencrypted). */
  key: z.string().min(1),
  /** Names this certificate answers by SNI (exact or `*.suffix`). @default the certificate's DNS subjectAltNames */
  server_names: z.array(z.string().min(1)).min(1).optional(),
  /** The certificate for a client that sends no SNI or an unknown name. @default the first */
  default: z.boolean().default(false),
});

/** Downstream TLS on an `http` or `tcp` listener. */
export const downstreamTls = z
  .strictObject({
    certificates: z.array(certificate).min(1, 'expected at least one certificate'),
    /** @default TLSv1.2 */
    min_version: version.default('TLSv1.2'),
    /** @default TLSv1.3 */
    max_version: version.default('TLSv1.3'),
    /** OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults). @default Node's default list */
    ciphers: z.string().min(1).optional(),
    /** ALPN protocols offered, in order of preference. @default [h2, http/1.1] on http (http2 on), [http/1.1] else; none on tcp */
    alpn: z.array(z.string().min(1).max(255)).optional(),
    /** Verify client certificates against a CA. */
    client_auth: z
      .strictObject({
        /** PEM file of the CAs client certificates must chain to. */
        ca: z.string().min(1),
        /** Refuse a client without a certificate. @default true */
        required: z.boolean().default(true),
        /** Request header that carries the verified subject upstream (a client's own is removed). @default x-client-cert-subject */
        subject_header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/).default('x-client-cert-subject'),
      })
      .optional(),
    /** Reload when a certificate, key or CA file changes (its directory is watched: rename-replace works). @default false */
    watch: z.boolean().default(false),
    /** Session tickets (resumption across generations: the supervisor keeps the keys). @default true */
    session_tickets: z.boolean().default(true),
    /** Lifetime of a TLS session (ticket hint). @default 5m */
    session_timeout: duration.default(300_000),
    /** Time a client has to finish its handshake. @default 10s */
    handshake_timeout: duration.default(10_000),
  })
  .superRefine((t, ctx) => {
    if (t.min_version === 'TLSv1.3' && t.max_version === 'TLSv1.2') ctx.addIssue({ code: 'custom', path: ['max_version'], message: 'max_version is below min_version' });
    if (t.certificates.filter((c) => c.default).length > 1) ctx.addIssue({ code: 'custom', path: ['certificates'], message: 'at most one certificate may be the default' });
  });

/** HTTP/2 on a TLS `http` listener (HTTP/1.1 stays available on the same port). */
export const http2Options = z.strictObject({
  /** @default true when the listener has tls */
  enabled: z.boolean().default(true),
  /** SETTINGS_MAX_CONCURRENT_STREAMS. @default 100 */
  max_concurrent_streams: z.number().int().min(1).max(2 ** 31 - 1).default(100),
  /** SETTINGS_MAX_HEADER_LIST_SIZE. @default the listener's max_header_size */
  max_header_list_size: size.optional(),
  /** SETTINGS_INITIAL_WINDOW_SIZE of each stream. @default 65535 */
  initial_window_size: z.number().int().min(0).max(2 ** 31 - 1).default(65_535),
  /** Memory a session may use for its buffers before new streams are refused. @default 10MiB */
  max_session_memory: size.default(10 * 1024 * 1024),
});

/** TLS to a cluster's endpoints. */
export const upstreamTls = z.strictObject({
  /** PEM file of the CAs endpoints' certificates must chain to. @default the system's CAs */
  ca: z.string().min(1).optional(),
  /** SNI and the name checked in the endpoint's certificate. @default the endpoint's host */
  server_name: z.string().min(1).optional(),
  /** Client certificate for the upstream (cert + key PEM files). */
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  /** Check the endpoint's certificate (turn off only for tests). @default true */
  verify: z.boolean().default(true),
  min_version: version.default('TLSv1.2'),
}).refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'cert and key go together' });

/** App-wide TLS settings. */
export const appTls = z.strictObject({
  /** How long a session ticket key serves before the supervisor makes a new one. @default 12h */
  ticket_key_rotation: duration.default(12 * 3_600_000),
  /** Warn at start when a certificate expires within this. @default 30 days */
  expiry_warning: duration.default(30 * 86_400_000),
  /** After a watched file changes, wait this long for the rest of a renewal before reloading. @default 1s */
  watch_debounce: duration.default(1_000),
});

export type DownstreamTlsConfig = z.output<typeof downstreamTls>;
export type Http2Config = z.output<typeof http2Options>;
export type UpstreamTlsConfig = z.output<typeof upstreamTls>;
export type AppTlsConfig = z.output<typeof appTls>;
