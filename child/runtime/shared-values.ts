/**
 * This process's copy of its generation's shared values (the SDK's `shared`). The runtime fills it
 * with what the supervisor sends, this process's own values included, so every worker applies
 * the same values in the same order and none applies its own ahead of the others.
 */
import type { SharedValue } from '../../shared/shared-value.ts';

export type SharedListener = (key: string, value: SharedValue) => void;

export class SharedValues {
  private readonly values = new Map<string, SharedValue>();
  private readonly listeners: SharedListener[] = [];

  get(key: string): SharedValue | undefined {
    return this.values.get(key);
  }

  /** Holds `value` for `key` and tells every listener; a listener that throws does not stop the others. */
  apply(key: string, value: SharedValue): void {
    this.values.set(key, value);
    for (const listener of [...this.listeners]) {
      try {
        listener(key, value);
      } catch (err) {
        // The supervisor's message must still be acknowledged; the app's error is its own.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  /** Calls `listener` for each value applied from now on; returns what removes it. */
  listen(listener: SharedListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
}
