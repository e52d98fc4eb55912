/**
 * The handles registration returns. A handle writes only this process's writer slot of
 * its cells with plain Float64Array stores: no atomics, no syscalls, no allocation per operation.
 * An aligned Float64 store is one instruction on x64, so a reader in another process sees the old
 * value or the new one, never a torn one.
 */

/** A monotonic counter. */
export interface Counter {
  /** Adds n (default 1); a negative or NaN n is ignored so the counter stays monotonic. */
  inc(n?: number): void;
}

/** A gauge: this process's contribution, summed over live writers when read. */
export interface Gauge {
  /** Sets this process's contribution to v. */
  set(v: number): void;
  /** Adds n (default 1). */
  inc(n?: number): void;
  /** Subtracts n (default 1). */
  dec(n?: number): void;
}

/** A histogram with fixed bucket upper bounds (Prometheus `le`, inclusive). */
export interface Histogram {
  /** Counts v in the first bucket whose bound is ≥ v (else +Inf) and adds it to the sum. */
  record(v: number): void;
  /** Adds pre-aggregated observations: `buckets[i]` more in bucket i (bounds.length + 1 of them, +Inf last, not cumulative) and `sum` to the sum (a bridge from another metrics library). */
  merge(buckets: readonly number[], sum: number): void;
}

/** A counter on a slot another process may write too (the supervisor's, shared with its successor during an upgrade): each increment adds to what the cell holds. */
export class SharedCounterHandle implements Counter {
  readonly #values: Float64Array;
  readonly #index: number;
  constructor(values: Float64Array, index: number) {
    this.#values = values;
    this.#index = index;
  }
  inc(n = 1): void {
    if (n > 0) this.#values[this.#index]! += n;
  }
}

/**
 * A counter on a slot nobody else writes while this process lives (a generation's: the
 * supervisor retires it only once the process is gone). The value lives in the handle and every
 * increment stores the new total to the cell — write-through, so a crash loses nothing — but
 * never loads it: a load of the cell would wait for the previous store to reach it (V8 does not
 * forward stores to typed arrays), which made `inc()` 2–4× a plain `obj.n += 1`.
 */
export class SoleCounterHandle implements Counter {
  readonly #values: Float64Array;
  readonly #index: number;
  /** The cell's value at the last rebase. Initialised with NaN so V8 stores it as a double from the start and never changes its representation later (a deoptimization). */
  #base = Number.NaN;
  /** Increments since the rebase: a small integer, so the increment is one integer add on an untagged field. */
  #small = 0;
  constructor(values: Float64Array, index: number) {
    this.#values = values;
    this.#index = index;
    this.#base = values[index]!;
  }
  inc(n?: number): void {
    // inc() and inc(1) take the short path. Any other branch in it would hold code that never
    // ran, which V8 compiles as a deoptimization exit, and that keeps it from hoisting the
    // handle's loads out of the caller's loop; this test folds away where the argument is constant.
    if (n !== undefined && n !== 1) return this.#add(n);
    const small = this.#small + 1;
    this.#small = small;
    this.#values[this.#index] = this.#base + small;
  }
  /** Moves the increments into the base, so #small stays far below 2^31 (past it V8 would make it a boxed double for every counter). */
  rebase(): void {
    this.#base += this.#small;
    this.#small = 0;
  }
  #add(n: number): void {
    if (!(n > 0)) return;
    const v = this.#base + this.#small + n;
    this.#base = v;
    this.#small = 0;
    this.#values[this.#index] = v;
  }
}

/** How often sole counters rebase: at this interval #small stays below 2^31 up to 200 million increments a second on one counter. */
export const REBASE_MS = 10_000;

export class GaugeHandle implements Gauge {
  readonly #values: Float64Array;
  readonly #index: number;
  constructor(values: Float64Array, index: number) {
    this.#values = values;
    this.#index = index;
  }
  set(v: number): void {
    this.#values[this.#index] = v;
  }
  inc(n = 1): void {
    this.#values[this.#index]! += n;
  }
  dec(n = 1): void {
    this.#values[this.#index]! -= n;
  }
}

export class HistogramHandle implements Histogram {
  readonly #values: Float64Array;
  readonly #index: number;
  readonly #bounds: Float64Array;
  constructor(values: Float64Array, index: number, bounds: readonly number[]) {
    this.#values = values;
    this.#index = index;
    this.#bounds = Float64Array.from(bounds);
  }
  record(v: number): void {
    const bounds = this.#bounds;
    const n = bounds.length;
    let i = 0;
    if (n <= 8) {
      while (i < n && !(v <= bounds[i]!)) i++;
    } else {
      let hi = n;
      while (i < hi) {
        const mid = (i + hi) >>> 1;
        if (v <= bounds[mid]!) hi = mid;
        else i = mid + 1;
      }
    }
    const values = this.#values;
    const base = this.#index;
    values[base + i]! += 1;
    values[base + n + 1]! += v;
    values[base + n + 2]! += 1;
  }
  merge(buckets: readonly number[], sum: number): void {
    const values = this.#values;
    const base = this.#index;
    const n = this.#bounds.length;
    let count = 0;
    for (let i = 0; i <= n; i++) {
      const c = buckets[i] ?? 0;
      if (c > 0) {
        values[base + i]! += c;
        count += c;
      }
    }
    if (count === 0) return;
    values[base + n + 1]! += sum;
    values[base + n + 2]! += count;
  }
}
