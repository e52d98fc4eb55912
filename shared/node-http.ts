/**
 * node:http without its ES module namespace. `import http from 'node:http'` makes Node read every
 * export to build the namespace, and three of them (WebSocket, CloseEvent, MessageEvent) are
 * getters that load undici, and with it tls, http2 and zlib: some 6 MiB of the supervisor's RSS
 * and tens of milliseconds of start-up for classes it never uses (nodejs/node#59686).
 * `process.getBuiltinModule` returns the CommonJS exports as they are, getters untouched.
 * Types still come from `import type http from 'node:http'`.
 */
export const nodeHttp: typeof import('node:http') = process.getBuiltinModule('node:http');
