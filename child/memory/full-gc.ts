/** A full (major) garbage collection on demand, without --expose-gc at start. */
import v8 from 'node:v8';
import vm from 'node:vm';

let gcFn: (() => void) | undefined;

/** Runs a full GC (the flag is set at run time, once); true once it ran. */
export function collectGarbage(): boolean {
  if (gcFn === undefined) {
    const global = (globalThis as { gc?: () => void }).gc;
    if (typeof global === 'function') gcFn = global;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    }
  }
  gcFn();
  return true;
}
