/**
 * History segment files: JSON lines under STATEDIR/history/, named by the
 * sequence number of their first entry so that name order is age order.
 * A line is either a HistoryEntry or an end record (`endOf`) that fills in a
 * flow's end time and counters when conntrack reports its end.
 */
import * as v from 'valibot';
import { Count, EpochMs, HistoryEntry } from '../protocol/model.js';

export const SEGMENT_PREFIX = 'seg-';
export const SEGMENT_SUFFIX = '.jsonl';

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

/** Splits a segment's text into complete lines; a last line without "\n" is torn. */
export function splitLines(text: string): { lines: string[]; torn: boolean } {
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  return { lines: lines.filter((l) => l !== ''), torn: last !== '' };
}
