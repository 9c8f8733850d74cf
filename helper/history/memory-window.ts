/**
 * The newest history entries, in memory, ascending by seq: what the UI's queries,
 * charts and dry runs read first, and where a flow's end finds its entry.
 */
import type { HistoryEntry } from '../protocol/model.js';
import { cloneEntry, findSeq, lowerBound } from './entries.js';
import { countInSeries, emptyBuckets, pageLimit, queryMatches } from './query.js';
import type { HistoryPage, HistoryQuery, SeriesBucket, SeriesQuery } from './types.js';

export class MemoryWindow {
  #entries: HistoryEntry[] = [];

  /** `capacity`: how many of the newest entries are kept. */
  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#entries.length;
  }

  /** The seq of the oldest entry held (everything below is only on disk), or undefined when empty. */
  get firstSeq(): number | undefined {
    return this.#entries[0]?.seq;
  }

  push(entry: HistoryEntry): void {
    this.#entries.push(entry);
    // Trim in chunks: a splice per append would make appends O(window).
    const slack = Math.max(1024, this.capacity >> 3);
    if (this.#entries.length > this.capacity + slack) {
      this.#entries.splice(0, this.#entries.length - this.capacity);
    }
  }

  /** Puts older entries (ascending, all below the ones held) before the ones held. */
  prepend(older: HistoryEntry[]): void {
    const merged = this.#entries.length === 0 ? older : older.concat(this.#entries);
    this.#entries = merged.length > this.capacity ? merged.slice(-this.capacity) : merged;
  }

  find(seq: number): HistoryEntry | undefined {
    return findSeq(this.#entries, seq);
  }

  /** Forgets the entries below `seq` (their segment was deleted). */
  dropBelow(seq: number): void {
    const keep = lowerBound(this.#entries, seq);
    if (keep > 0) this.#entries.splice(0, keep);
  }

  query(q: HistoryQuery): HistoryPage {
    const limit = pageLimit(q);
    const needle = q.text?.toLowerCase() ?? '';
    const out: HistoryEntry[] = [];
    let i = this.#entries.length - 1;
    if (q.beforeSeq !== undefined) i = lowerBound(this.#entries, q.beforeSeq) - 1;
    for (; i >= 0; i--) {
      const e = this.#entries[i]!;
      if (!queryMatches(e, q, needle)) continue;
      if (out.length === limit) return { entries: out, nextBeforeSeq: out[out.length - 1]!.seq };
      out.push(cloneEntry(e));
    }
    return { entries: out, nextBeforeSeq: null };
  }

  series(q: SeriesQuery): SeriesBucket[] {
    const buckets = emptyBuckets(q);
    if (buckets.length === 0) return buckets;
    for (const e of this.#entries) countInSeries(buckets, q, e);
    return buckets;
  }

  /** The entries `matches` accepts, newest first, the first `limit` of them copied. */
  dryRun(
    matches: (e: HistoryEntry) => boolean,
    limit: number,
  ): { entries: HistoryEntry[]; total: number } {
    const entries: HistoryEntry[] = [];
    let total = 0;
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i]!;
      if (!matches(e)) continue;
      total++;
      if (entries.length < limit) entries.push(cloneEntry(e));
    }
    return { entries, total };
  }
}
