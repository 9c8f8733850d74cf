/** Operations on entries kept in ascending seq order, shared by the memory window and the disk reader. */
import type { HistoryEntry } from '../protocol/model.js';
import type { EndRecord } from './segments.js';

/**
 * A copy the caller may keep or change: the entry's own fields, which markEnded()
 * changes later. The request is shared, never changed once recorded (a deep copy
 * per append was a twentieth of the helper's CPU at 2,500 decisions/s).
 */
export function cloneEntry(e: HistoryEntry): HistoryEntry {
  return { ...e };
}

export function applyEnd(e: HistoryEntry, end: EndRecord): void {
  e.ended = end.ended;
  e.bytesOut = end.bytesOut;
  e.bytesIn = end.bytesIn;
  e.packetsOut = end.packetsOut;
  e.packetsIn = end.packetsIn;
}

/** First index whose seq is >= `seq` in an ascending array. */
export function lowerBound(entries: readonly Pick<HistoryEntry, 'seq'>[], seq: number): number {
  // Seqs are consecutive wherever nothing was lost: the distance from the first
  // is the index (a flow's end finds its entry without 16 probes across memory).
  const guess = entries.length > 0 ? seq - entries[0]!.seq : -1;
  if (guess >= 0 && guess < entries.length && entries[guess]!.seq === seq) return guess;
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function findSeq(entries: readonly HistoryEntry[], seq: number): HistoryEntry | undefined {
  const e = entries[lowerBound(entries, seq)];
  return e?.seq === seq ? e : undefined;
}
