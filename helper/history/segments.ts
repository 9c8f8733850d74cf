/**
 * History segment files: JSON lines under STATEDIR/history/, named by the
 * sequence number of their first entry so that name order is age order.
 * A line is either a HistoryEntry or an end record (`endOf`) that fills in a
 * flow's end time and counters when conntrack reports its end.
 */
import * as v from 'valibot';
import { Count, EpochMs, HistoryEntry } from '../protocol/model.js';

const SEGMENT_PREFIX = 'seg-';
const SEGMENT_SUFFIX = '.jsonl';

export function segmentName(firstSeq: number): string {
  return `${SEGMENT_PREFIX}${String(firstSeq).padStart(16, '0')}${SEGMENT_SUFFIX}`;
}

/** The first sequence number of a segment file name, or undefined for other files. */
export function parseSegmentName(name: string): number | undefined {
  const m = /^seg-(\d{16})\.jsonl$/u.exec(name);
  return m ? Number(m[1]) : undefined;
}

export const EndRecord = v.object({
  endOf: Count,
  ended: EpochMs,
  bytesOut: v.nullable(Count),
  bytesIn: v.nullable(Count),
  packetsOut: v.nullable(Count),
  packetsIn: v.nullable(Count),
});
export type EndRecord = v.InferOutput<typeof EndRecord>;

export type ParsedLine =
  { kind: 'entry'; entry: HistoryEntry } | { kind: 'end'; end: EndRecord } | { kind: 'bad' };

export function parseLine(line: string): ParsedLine {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    // A torn or corrupted line: the caller counts it; the rest of the file is still good.
    return { kind: 'bad' };
  }
  if (typeof raw === 'object' && raw !== null && 'endOf' in raw) {
    const r = v.safeParse(EndRecord, raw);
    return r.success ? { kind: 'end', end: r.output } : { kind: 'bad' };
  }
  const r = v.safeParse(HistoryEntry, raw);
  return r.success ? { kind: 'entry', entry: r.output } : { kind: 'bad' };
}

/**
 * Which entries of a segment to keep, in file order: the longest run of strictly
 * increasing seqs above `floor` and below `ceiling` (true = keep). Seqs are written in
 * increasing order, so any other line is damage; keeping the longest run means that one
 * damaged seq (raised, lowered or repeated) costs only its own line, never the valid
 * entries around it, and the kept entries stay sorted for the binary search.
 */
export function longestInOrder(seqs: readonly number[], floor: number, ceiling: number): boolean[] {
  const keep = seqs.map(() => false);
  // Patience method: tails[k] is the index ending the best increasing run of length k + 1.
  const tails: number[] = [];
  const prev = new Int32Array(seqs.length).fill(-1);
  for (let i = 0; i < seqs.length; i++) {
    const s = seqs[i]!;
    if (!(s > floor && s < ceiling)) continue;
    let lo = 0;
    let hi = tails.length;
    // Undamaged segments only ever extend the run: no search.
    if (hi > 0 && seqs[tails[hi - 1]!]! < s) lo = hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqs[tails[mid]!]! < s) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1]!;
    tails[lo] = i;
  }
  for (let i = tails.length > 0 ? tails[tails.length - 1]! : -1; i >= 0; i = prev[i]!) {
    keep[i] = true;
  }
  return keep;
}
