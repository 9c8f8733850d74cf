/**
 * The connection history: an append-only log of decisions, rotated by size
 * and age, with an in-memory window of recent entries for the UI's queries,
 * charts and rule dry runs.
 *
 * Appends never touch the disk directly: lines are batched and written once
 * per flush interval. Each helper run writes fresh segments (never appending
 * to a file that may end in a torn line); old segments are deleted whole.
 *
 * Each query comes in two forms: `…Memory` reads only the memory window (fast,
 * synchronous), `…All` reads the older entries from the segment files as well.
 */
import { join } from 'node:path';
import type { HistoryEntry, RuleMatch } from '../protocol/model.js';
import { systemClock, type Clock, type TimerHandle } from '../common/clock.js';
import { setNewest } from '../common/bounded-map.js';
import { DiskSegments } from './disk-segments.js';
import { applyEnd, cloneEntry } from './entries.js';
import { HistoryError } from './errors.js';
import { MemoryWindow } from './memory-window.js';
import { countInSeries, dryRunLimit, dryRunMatcher, pageLimit, queryMatches } from './query.js';
import type { EndRecord } from './segments.js';
import type {
  DryRunQuery,
  DryRunResult,
  EndCounters,
  HistoryInput,
  HistoryLog,
  HistoryPage,
  HistoryQuery,
  LoadReport,
  SeriesBucket,
  SeriesQuery,
} from './types.js';

const HISTORY_DIR = 'history';

export interface HistoryStoreOptions {
  /** The state directory; segments go to STATEDIR/history/. */
  dir: string;
  /** Total size of all segments. Default 64 MiB. */
  maxBytes?: number;
  /** Segments whose newest entry is older than this are deleted. Default 30 days. */
  maxAgeMs?: number;
  /** A segment is closed and a new one started past this size. Default maxBytes / 8. */
  segmentBytes?: number;
  /** Entries kept in memory for queries (the newest). Default 200,000. */
  memoryEntries?: number;
  /** Batching interval of writes. Default 250 ms. */
  flushIntervalMs?: number;
  /**
   * Read the entries already on disk only when first needed (`loaded()`), not at open:
   * open then reads only the newest segment (for the next sequence number). The helper
   * does this: a daemon nobody queries never parses its history (64 MiB of it cost
   * 1.2 s of start-up and 80 MB of RSS). Default false.
   */
  lazyLoad?: boolean;
  clock?: Clock;
  /** Gets a warning for each segment with damaged lines (file, offsets, count). */
  log?: HistoryLog;
}

export class HistoryStore {
  readonly dir: string;
  readonly #flushInterval: number;
  readonly #clock: Clock;
  readonly #errorListeners = new Set<(e: HistoryError) => void>();
  readonly #memory: MemoryWindow;
  readonly #disk: DiskSegments;
  /**
   * Appended entries and end records not yet written. They are turned into lines when
   * written, not when appended: a line made at append would live for the flush interval
   * and be copied by every young-generation GC meanwhile, which at thousands of
   * decisions a second made those pauses longer (docs/benchmarks.md). An entry whose
   * flow ended before the flush is written with its end fields, then its end record:
   * applying that record again at load changes nothing.
   */
  #buffer: (HistoryEntry | EndRecord)[] = [];
  #bufferLastTime = 0;
  /** Seq of the first entry in the buffer: a new segment is named after it. */
  #bufferFirstSeq: number | null = null;
  #timer: TimerHandle | null = null;
  #writing: Promise<void> = Promise.resolve();
  #nextSeq = 1;
  #closed = false;
  /** Entries with a smaller seq were on disk at open; they are in memory once loaded. */
  #runFirstSeq = 1;
  #loaded = true;
  #loading: Promise<void> | null = null;
  /** End records for entries on disk that came before they were loaded (bounded). */
  readonly #lateEnds = new Map<number, EndRecord>();

  private constructor(options: HistoryStoreOptions) {
    const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.dir = join(options.dir, HISTORY_DIR);
    this.#flushInterval = options.flushIntervalMs ?? 250;
    this.#clock = options.clock ?? systemClock;
    this.#memory = new MemoryWindow(options.memoryEntries ?? 200_000);
    this.#disk = new DiskSegments({
      dir: this.dir,
      maxBytes,
      maxAgeMs: options.maxAgeMs ?? 30 * 24 * 3600 * 1000,
      segmentBytes: options.segmentBytes ?? Math.max(4096, Math.floor(maxBytes / 8)),
      window: this.#memory.capacity,
      clock: this.#clock,
      log: options.log,
      nextSeq: () => this.#nextSeq,
      onDeleted: (firstSeq) => this.#memory.dropBelow(firstSeq),
    });
  }

  static async open(options: HistoryStoreOptions): Promise<HistoryStore> {
    const store = new HistoryStore(options);
    if (options.lazyLoad) await store.#scan();
    else await store.#load();
    return store;
  }

  /** Whether the entries that were on disk at open are in memory (always, without lazyLoad). */
  get isLoaded(): boolean {
    return this.#loaded;
  }

  /**
   * Resolves once the entries that were on disk at open are in memory, reading them
   * on the first call (lazyLoad). Queries see only this run's entries before that.
   */
  loaded(): Promise<void> {
    if (this.#loaded) return Promise.resolve();
    this.#loading ??= this.#loadOlder().finally(() => {
      this.#loading = null;
    });
    return this.#loading;
  }

  /** What loading found: damaged lines are skipped, counted here and logged (`log`). */
  get loadReport(): Readonly<LoadReport> {
    return this.#disk.report;
  }

  /** The sequence number the next append gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Entries in memory (the query window). */
  get size(): number {
    return this.#memory.size;
  }

  /** Segment files and their sizes, oldest first (for tests and the UI's storage figure). */
  segments(): { name: string; size: number }[] {
    return this.#disk.list();
  }

  onError(listener: (e: HistoryError) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  append(input: HistoryInput): HistoryEntry {
    this.#checkOpen();
    const entry: HistoryEntry = {
      seq: this.#nextSeq++,
      request: input.request,
      action: input.action,
      reason: input.reason,
      ruleId: input.ruleId,
      decidedAt: input.decidedAt,
      ended: input.ended ?? null,
      bytesOut: input.bytesOut ?? null,
      bytesIn: input.bytesIn ?? null,
      packetsOut: input.packetsOut ?? null,
      packetsIn: input.packetsIn ?? null,
    };
    this.#memory.push(entry);
    this.#bufferFirstSeq ??= entry.seq;
    this.#queue(entry, entry.decidedAt);
    return cloneEntry(entry);
  }

  /** Records a flow's end and counters; false when the entry is no longer in memory. */
  markEnded(seq: number, counters: EndCounters): boolean {
    this.#checkOpen();
    const end: EndRecord = {
      endOf: seq,
      ended: counters.ended,
      bytesOut: counters.bytesOut ?? null,
      bytesIn: counters.bytesIn ?? null,
      packetsOut: counters.packetsOut ?? null,
      packetsIn: counters.packetsIn ?? null,
    };
    this.#queue(end, end.ended);
    const e = this.#memory.find(seq);
    if (e) applyEnd(e, end);
    else if (!this.#loaded && seq < this.#runFirstSeq) {
      setNewest(this.#lateEnds, seq, end, 65_536);
      return true;
    } else if (seq < this.#memoryFirstSeq()) {
      this.#disk.rememberEnd(end);
      return true;
    }
    return e !== undefined;
  }

  /** A page of the memory window's entries, newest first. */
  queryMemory(q: HistoryQuery = {}): HistoryPage {
    return this.#memory.query(q);
  }

  /** Counts per time bucket over [since, until) of the memory window's entries, for charts. */
  seriesMemory(q: SeriesQuery): SeriesBucket[] {
    return this.#memory.series(q);
  }

  /** Which memory window entries (newest first, up to limit) a rule match would have matched, and how many. */
  dryRunMemory(match: RuleMatch, q: DryRunQuery = {}): DryRunResult {
    return this.#memory.dryRun(dryRunMatcher(match, q), dryRunLimit(q));
  }

  /**
   * queryMemory() over everything kept: when the page is not full from memory, older
   * entries are read from the segments on disk (newest first; the last two segments
   * read are cached for the following pages). The helper's `history.query` uses this.
   */
  async queryAll(q: HistoryQuery = {}): Promise<HistoryPage> {
    const limit = pageLimit(q);
    const page = this.#memory.query(q);
    if (page.entries.length === limit) return page;
    const needle = q.text?.toLowerCase() ?? '';
    const out = page.entries;
    for await (const e of this.#olderEntries(q.beforeSeq ?? Infinity, q.since)) {
      if (!queryMatches(e, q, needle)) continue;
      if (out.length === limit) return { entries: out, nextBeforeSeq: out[out.length - 1]!.seq };
      out.push(cloneEntry(e));
    }
    return { entries: out, nextBeforeSeq: null };
  }

  /** seriesMemory() over everything kept (older segments read from disk when `since` reaches them). */
  async seriesAll(q: SeriesQuery): Promise<SeriesBucket[]> {
    const buckets = this.#memory.series(q);
    if (buckets.length === 0) return buckets;
    for await (const e of this.#olderEntries(Infinity, q.since)) countInSeries(buckets, q, e);
    return buckets;
  }

  /** dryRunMemory() over everything kept: the total counts the entries on disk too. */
  async dryRunAll(match: RuleMatch, q: DryRunQuery = {}): Promise<DryRunResult> {
    const matches = dryRunMatcher(match, q);
    const limit = dryRunLimit(q);
    const result = this.#memory.dryRun(matches, limit);
    for await (const e of this.#olderEntries(Infinity, q.since)) {
      if (!matches(e)) continue;
      result.total++;
      if (result.entries.length < limit) result.entries.push(cloneEntry(e));
    }
    return result;
  }

  /** Writes the batched lines now (and applies rotation and limits). */
  flush(): Promise<void> {
    if (this.#timer !== null) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = null;
    }
    const run = this.#writing.then(() => this.#writeBuffer());
    // The chain must survive a failed write; the caller of this flush gets the error.
    this.#writing = run.catch(() => undefined);
    return run;
  }

  /** Flushes, fsyncs and closes the current segment. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    await this.#disk.close();
  }

  /** The seq of the oldest entry in memory (everything below is only on disk). */
  #memoryFirstSeq(): number {
    return this.#memory.firstSeq ?? this.#nextSeq;
  }

  /** Entries older than the memory window and than `belowSeq`, newest first, from disk. */
  async *#olderEntries(belowSeq: number, since?: number): AsyncGenerator<HistoryEntry> {
    if (!this.#loaded) return; // lazyLoad: queries wait for loaded() first
    yield* this.#disk.entriesBelow(Math.min(belowSeq, this.#memoryFirstSeq()), since);
  }

  #checkOpen(): void {
    if (this.#closed) throw new HistoryError('CLOSED', 'the history store is closed');
  }

  #queue(item: HistoryEntry | EndRecord, time: number): void {
    this.#buffer.push(item);
    this.#bufferLastTime = Math.max(this.#bufferLastTime, time);
    if (this.#timer === null) {
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = null;
        this.flush().catch((e: unknown) => this.#reportError(e));
      }, this.#flushInterval);
    }
  }

  #reportError(e: unknown): void {
    const err =
      e instanceof HistoryError
        ? e
        : new HistoryError('IO', `writing history: ${(e as Error).message}`, { cause: e });
    for (const l of this.#errorListeners) l(err);
  }

  async #writeBuffer(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const items = this.#buffer;
    const lastTime = this.#bufferLastTime;
    const firstSeq = this.#bufferFirstSeq ?? this.#nextSeq;
    this.#buffer = [];
    this.#bufferLastTime = 0;
    this.#bufferFirstSeq = null;
    let data = '';
    for (const item of items) data += `${JSON.stringify(item)}\n`;
    await this.#disk.write(data, lastTime, firstSeq);
  }

  /** lazyLoad's open: segment names, sizes and times, and the newest segment's highest seq. */
  async #scan(): Promise<void> {
    const { found, maxSeq } = await this.#disk.scan();
    this.#nextSeq = maxSeq + 1;
    this.#runFirstSeq = this.#nextSeq;
    this.#loaded = found === 0;
    await this.#disk.trim();
  }

  async #load(): Promise<void> {
    const { entries, maxSeq } = await this.#disk.loadAll();
    this.#memory.prepend(entries);
    this.#nextSeq = maxSeq + 1;
    this.#runFirstSeq = this.#nextSeq;
    await this.#disk.trim();
  }

  /** lazyLoad: reads the segments that were there at open and puts their entries before this run's. */
  async #loadOlder(): Promise<void> {
    const entries = await this.#disk.loadBelow(this.#runFirstSeq);
    for (const e of entries) {
      const end = this.#lateEnds.get(e.seq);
      if (end) applyEnd(e, end);
    }
    this.#lateEnds.clear();
    // Segments deleted meanwhile by the limits took their entries with them.
    const first = this.#disk.firstSeq();
    this.#memory.prepend(entries.filter((e) => e.seq >= first));
    this.#loaded = true;
  }
}
