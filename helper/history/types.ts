/** The history store's public shapes: what goes in, what queries return, what loading found. */
import type { Action, HistoryEntry } from '../protocol/model.js';

/** Where damage found while loading is reported (the helper's Logger fits). */
export interface HistoryLog {
  warn(
    component: string,
    message: string,
    fields?: Record<string, string | number | boolean | null | undefined>,
  ): void;
}

/** An entry as the caller gives it: the store assigns `seq`; end fields default to null. */
export type HistoryInput = Omit<
  HistoryEntry,
  'seq' | 'ended' | 'bytesOut' | 'bytesIn' | 'packetsOut' | 'packetsIn'
> &
  Partial<Pick<HistoryEntry, 'ended' | 'bytesOut' | 'bytesIn' | 'packetsOut' | 'packetsIn'>>;

export interface EndCounters {
  ended: number;
  bytesOut?: number | null;
  bytesIn?: number | null;
  packetsOut?: number | null;
  packetsIn?: number | null;
}

export interface HistoryQuery {
  /** decidedAt >= since (epoch ms). */
  since?: number;
  /** decidedAt < until. */
  until?: number;
  /** Case-insensitive substring of exe, command, host, either address or user. */
  text?: string;
  action?: Action;
  /** Default 100, at most 10,000. */
  limit?: number;
  /** Only entries older than this sequence number (paging). */
  beforeSeq?: number;
}

export interface HistoryPage {
  /** Newest first. */
  entries: HistoryEntry[];
  /** Pass as beforeSeq for the next page; null when this page is the last. */
  nextBeforeSeq: number | null;
}

export interface SeriesQuery {
  since: number;
  until: number;
  bucketMs: number;
}

export interface SeriesBucket {
  start: number;
  allowed: number;
  denied: number;
  /** Decisions that went through a prompt (answered or timed out). */
  prompted: number;
  /** Bytes of the bucket's connections that have ended (counters come at the end). */
  bytesOut: number;
  bytesIn: number;
}

export interface DryRunQuery {
  since?: number;
  until?: number;
  limit?: number;
}

export interface DryRunResult {
  entries: HistoryEntry[];
  total: number;
}

/** The damaged lines of one segment file, skipped at load. */
export interface SegmentDamage {
  file: string;
  /** Damaged lines in the file. */
  count: number;
  /** Byte offsets of the damaged lines, in order (the first MAX_DAMAGE_OFFSETS). */
  offsets: number[];
  /** Not a valid JSON record. */
  invalid: number;
  /** A seq out of order: repeated, lower than an earlier one, or too high for its segment. */
  outOfOrder: number;
  /** A last line without its newline (0 or 1). */
  torn: number;
}

export interface LoadReport {
  segments: number;
  entries: number;
  endRecords: number;
  /** Damaged lines: not valid JSON records, out of order, or torn. */
  skippedLines: number;
  tornLines: number;
  /** Each segment file with damaged lines. */
  damaged: SegmentDamage[];
}
