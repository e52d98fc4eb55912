/** Decoding a stat-table entry: the memory is untrusted, so every offset is checked before use. */
import { CELL_BYTES, E, ENTRY_BYTES, kindName, type Layout } from './layout.ts';
import type { Segment } from './files.ts';
import { roomOf } from './reclaim.ts';
import { MAX_BOUNDS, checkBounds, statKey, type Labels } from './stat-key.ts';
import type { Descriptor } from './table.ts';

const decoder = new TextDecoder();

/** The descriptor of table entry `index`, or why it cannot be one: every offset is checked, the memory is untrusted. */
export function decodeEntry(segment: Segment, layout: Layout, index: number): Descriptor | string {
  const { i32, f64, u8 } = segment;
  const entry = (layout.tableOffset + index * ENTRY_BYTES) / 4;
  const code = i32[entry + E.kind]!;
  const kind = kindName(code);
  if (!kind) return `unknown kind ${code}`;
  const keyOffset = i32[entry + E.keyOffset]!;
  const keyLength = i32[entry + E.keyLength]!;
  if (keyOffset < 0 || keyLength <= 0 || keyOffset + keyLength > layout.arenaBytes) {
    return `key at arena offset ${keyOffset}, ${keyLength} bytes, is outside the ${layout.arenaBytes}-byte arena`;
  }
  const boundsOffset = i32[entry + E.boundsOffset]!;
  const boundsCount = i32[entry + E.boundsCount]!;
  if ((kind === 'histogram') !== boundsCount > 0 || boundsCount < 0 || boundsCount > MAX_BOUNDS) return `${kind} with ${boundsCount} bounds`;
  if (boundsOffset < 0 || boundsOffset % CELL_BYTES !== 0 || boundsOffset + boundsCount * CELL_BYTES > layout.arenaBytes) {
    return `bounds at arena offset ${boundsOffset} are outside the arena`;
  }
  const cell = i32[entry + E.cell]!;
  const cells = kind === 'histogram' ? boundsCount + 3 : 1;
  if (cell < 0 || cell + cells > layout.cellsPerSegment) return `cells ${cell} to ${cell + cells - 1} are outside the ${layout.cellsPerSegment} of a segment`;
  const start = layout.arenaOffset + keyOffset;
  let end = start + keyLength;
  while (end > start && u8[end - 1] === 0) end--; // a reused entry pads its key with NULs (reclaim.ts)
  const key = decoder.decode(u8.subarray(start, end));
  let name: string;
  let labels: Labels;
  let bounds: readonly number[];
  try {
    const parsed = JSON.parse(key) as unknown;
    if (!Array.isArray(parsed) || parsed.length !== 2) throw new Error('not [name, labels]');
    const canonical = statKey(kind, parsed[0] as string, parsed[1] as Record<string, string>);
    if (canonical.key !== key) throw new Error('not in canonical form');
    name = parsed[0] as string;
    labels = canonical.labels;
    const boundsStart = (layout.arenaOffset + boundsOffset) / CELL_BYTES;
    bounds = kind === 'histogram' ? Object.freeze(checkBounds(name, Array.from(f64.subarray(boundsStart, boundsStart + boundsCount)))) : [];
  } catch (err) {
    return `its key at arena offset ${keyOffset} is not a stat name with labels (${(err as Error).message})`;
  }
  const contiguous = keyOffset === boundsOffset + boundsCount * CELL_BYTES;
  const bytes = contiguous ? Math.min(roomOf(boundsCount, keyLength), layout.arenaBytes - boundsOffset) : 0;
  return Object.freeze({ kind, name, labels, key, bounds: Object.freeze(bounds), segment: segment.index, entry: index, cell, cells, region: boundsOffset, bytes });
}
