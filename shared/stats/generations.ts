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

/** The non-free entries (call under the seqlock). */
export function readGenerations(i32: Int32Array, f64: Float64Array, layout: Layout): GenerationEntry[] {
  const out: GenerationEntry[] = [];
  for (let slot = 0; slot < layout.generations; slot++) {
    const byte = GENERATION_TABLE_OFFSET + slot * GENERATION_BYTES;
    const state = GENERATION_STATES[i32[byte / 4 + I_STATE]!] ?? 'free';
    if (state === 'free') continue;
    out.push({
      slot,
      number: f64[byte / 8 + F_NUMBER]!,
      startedAt: f64[byte / 8 + F_STARTED]!,
      pid: i32[byte / 4 + I_PID]!,
      state,
      writer: i32[byte / 4 + I_WRITER]!,
    });
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
