/** An upstream endpoint: `host:port`, `[v6]:port`, `unix:/path` or `/path`. */
export type Endpoint =
  | { kind: 'tcp'; host: string; port: number; key: string }
  | { kind: 'unix'; path: string; key: string };

/** Parses an endpoint; throws a TypeError saying what was expected. */
export function parseEndpoint(text: string): Endpoint {
  const input = text.trim();
  const unix = input.startsWith('unix:') ? input.slice(5) : input.startsWith('/') ? input : undefined;
  if (unix !== undefined) {
    if (!unix.startsWith('/')) throw new TypeError(`invalid endpoint '${text}': a Unix socket path must be absolute`);
    return { kind: 'unix', path: unix, key: `unix:${unix}` };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(input);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) {
    throw new TypeError(`invalid endpoint '${text}': expected HOST:PORT (port 1-65535), [IPv6]:PORT, unix:/path or /path`);
  }
  const host = m[1] ?? (m[2] as string);
  return { kind: 'tcp', host, port, key: m[1] ? `[${host}]:${port}` : `${host}:${port}` };
}

/** The origin undici is given for an endpoint (a Unix endpoint connects through `socketPath`). */
export function originOf(endpoint: Endpoint): string {
  return endpoint.kind === 'unix' ? 'http://localhost' : `http://${endpoint.key}`;
}
