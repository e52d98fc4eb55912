/** The generation table in segment 0's header: number, pid, state, start time and writer of each generation. */
import { GENERATION_BYTES, GENERATION_STATES, GENERATION_TABLE_OFFSET, invalid, type GenerationState, type Layout } from './layout.ts';

/** A generation-table entry. */
export interface GenerationEntry {
  /** Table index. */
  slot: number;
  /** Generation number. */
  number: number;
  pid: number;
  state: GenerationState;
  /** Epoch milliseconds. */
  startedAt: number;
  /** Writer index of the generation, -1 when it has none. */
  writer: number;
}

/** Int32 offsets of pid, state and writer, Float64 offsets of number and startedAt, in an entry. */
const I_PID = 4;
const I_STATE = 5;
const I_WRITER = 6;
const F_NUMBER = 0;
const F_STARTED = 1;

/** The non-free entries (call under the seqlock); an entry whose fields cannot be real is skipped and told to `damaged`. */
export function readGenerations(i32: Int32Array, f64: Float64Array, layout: Layout, damaged: (why: string) => void = () => {}): GenerationEntry[] {
  const out: GenerationEntry[] = [];
  for (let slot = 0; slot < layout.generations; slot++) {
    const byte = GENERATION_TABLE_OFFSET + slot * GENERATION_BYTES;
    const code = i32[byte / 4 + I_STATE]!;
    if (code === 0) continue;
    const state = GENERATION_STATES[code];
    const entry = {
      slot,
      number: f64[byte / 8 + F_NUMBER]!,
      startedAt: f64[byte / 8 + F_STARTED]!,
      pid: i32[byte / 4 + I_PID]!,
      writer: i32[byte / 4 + I_WRITER]!,
    };
    const why =
      state === undefined
        ? `state code ${code}`
        : !Number.isSafeInteger(entry.number) || entry.number < 0
          ? `generation number ${entry.number}`
          : entry.pid < 0
            ? `pid ${entry.pid}`
            : entry.writer < -1 || entry.writer >= layout.writers
              ? `writer ${entry.writer} (there are ${layout.writers})`
              : !Number.isFinite(entry.startedAt)
                ? `start time ${entry.startedAt}`
                : undefined;
    if (why !== undefined || state === undefined) {
      damaged(`slot ${slot} (offset ${byte}): ${why ?? ''}`);
      continue;
    }
    out.push({ ...entry, state });
  }
  return out;
}

/** Checks an entry and returns the function that stores it (to run under the seqlock). */
export function generationWriter(
  i32: Int32Array,
  f64: Float64Array,
  layout: Layout,
  slot: number,
  entry: Omit<GenerationEntry, 'slot'>,
): () => void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= layout.generations) {
    invalid(`generation slot must be an integer from 0 to ${layout.generations - 1}, got ${slot}`);
  }
  const code = GENERATION_STATES.indexOf(entry.state);
  if (code < 0) invalid(`unknown generation state ${JSON.stringify(entry.state)}`);
  for (const key of ['number', 'startedAt', 'pid', 'writer'] as const) {
    if (typeof entry[key] !== 'number' || !Number.isFinite(entry[key])) invalid(`generation ${key} must be a finite number`);
  }
  const byte = GENERATION_TABLE_OFFSET + slot * GENERATION_BYTES;
  return () => {
    f64[byte / 8 + F_NUMBER] = entry.number;
    f64[byte / 8 + F_STARTED] = entry.startedAt;
    i32[byte / 4 + I_PID] = entry.pid;
    i32[byte / 4 + I_STATE] = code;
    i32[byte / 4 + I_WRITER] = entry.writer;
  };
}
