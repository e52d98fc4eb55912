/**
 * Preload for unmodified programs: `node --import baton/child/register app.js`.
 * A `server.listen(3000)` (or a host, or a Unix path) gets the socket Baton holds for that address
 * instead of a fresh bind, HTTP servers get Baton's drain semantics, and the generation reports
 * ready once its first listen has completed. Without Baton the program runs exactly as before.
 */
import net from 'node:net';
import { targetAddress } from './runtime/inherited.ts';
import { hideUndiciExports } from './start/lean-http.ts';
import { generation, launchedByBaton, listen, ready, SDK_LISTEN, serve } from './sdk.ts';

// Before the app's own import of node:http, which follows this preload (child/start/lean-http.ts).
if (launchedByBaton()) hideUndiciExports();

const originalListen = net.Server.prototype.listen;
let readySent = false;

function patchedListen(this: net.Server, ...args: unknown[]): net.Server {
  const target = describe(args);
  if (target === undefined || !launchedByBaton()) {
    const result = (originalListen as (...a: unknown[]) => net.Server).apply(this, args);
    // A program that takes its socket the systemd way (`listen({ fd: 3 })`) on its own: the preload
    // said hello for it, so it must say ready too, and its server drains the SDK's way.
    if (launchedByBaton() && inheritedFd(args) && !(this as { [SDK_LISTEN]?: true })[SDK_LISTEN]) {
      serve(this);
      this.once('listening', sendReady);
    }
    return result;
  }
  if (target.callback) this.once('listening', target.callback);
  listen({ address: target.address }, this).then(sendReady, (err: Error) => this.emit('error', err));
  return this;
}

function sendReady(): void {
  if (readySent) return;
  readySent = true;
  // A program that listens on several addresses usually does so in one go.
  setImmediate(ready);
}

function inheritedFd(args: unknown[]): boolean {
  const first = args[0];
  return typeof first === 'object' && first !== null && typeof (first as { fd?: unknown }).fd === 'number' && (first as { fd: number }).fd >= 3;
}

function describe(args: unknown[]): { address: string; callback?: () => void } | undefined {
  const last = args[args.length - 1];
  const callback = typeof last === 'function' ? (last as () => void) : undefined;
  const first = args[0];
  let address: string | undefined;
  if (typeof first === 'object' && first !== null) {
    const options = first as Record<string, unknown>;
    // Descriptors and handles are already sockets: nothing to look up.
    if ('fd' in options || 'handle' in options || '_handle' in options) return undefined;
    address = targetAddress(options);
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    address = targetAddress({ port: first, host: typeof args[1] === 'string' ? args[1] : undefined });
  } else if (typeof first === 'string') {
    address = targetAddress({ path: first });
  }
  if (address === undefined || /:0$/.test(address)) return undefined;
  return callback ? { address, callback } : { address };
}

net.Server.prototype.listen = patchedListen as typeof net.Server.prototype.listen;
// Say hello at once, so Baton waits for this generation's ready() rather than guessing — unless
// Baton added the preload itself: the program may bring its own SDK (another release's), whose
// hello must be the one Baton checks; a plain program says hello at its first listen.
if (launchedByBaton() && process.env.BATON_PRELOAD !== 'auto') generation();
