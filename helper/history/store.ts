/**
 * The connection history: an append-only log of decisions, rotated by size
 * and age, with an in-memory window of recent entries for the UI's queries,
 * charts and rule dry runs.
 *
 * Appends never touch the disk directly: lines are batched and written once
 * per flush interval. Each helper run writes fresh segments (never appending
 * to a file that may end in a torn line); old segments are deleted whole.
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Action, HistoryEntry, RuleMatch } from '../protocol/model.js';
import { systemClock, type Clock, type TimerHandle } from '../decisions/clock.js';
import { compileMatch, matchesView, requestView } from '../decisions/matcher.js';
import { setNewest } from '../common/bounded-map.js';
import { HistoryError } from './errors.js';
import {
  longestInOrder,
  parseLine,
  parseSegmentName,
  segmentName,
  type EndRecord,
} from './segments.js';

export const HISTORY_DIR = 'history';

/** Where damage found while loading is reported (the helper's Logger fits). */
export interface HistoryLog {
  warn(
    component: string,
    message: string,
    fields?: Record<string, string | number | boolean | null | undefined>,
  ): void;
}

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

interface Segment {
  name: string;
  firstSeq: number;
  size: number;
  /** Newest decidedAt/ended in the segment; for age-based deletion. */
  lastTime: number;
  /**
   * Its entries' seqs are above this: the highest seq kept from the older segments when
   * it was loaded (0 for this run's segments, which are written in order).
   */
  floor: number;
}

const MAX_LIMIT = 10_000;
const SEGMENT_CACHE_MS = 60_000;
const MAX_BUCKETS = 10_000;
export const MAX_DAMAGE_OFFSETS = 100;
/** Offsets named in a damage warning: the log line stays short. */
const LOGGED_OFFSETS = 20;

/**
 * A copy the caller may keep or change: the entry's own fields, which markEnded()
 * changes later. The request is shared, never changed once recorded (a deep copy
 * per append was a twentieth of the helper's CPU at 2,500 decisions/s).
 */
function cloneEntry(e: HistoryEntry): HistoryEntry {
  return { ...e };
}

function applyEnd(e: HistoryEntry, end: EndRecord): void {
  e.ended = end.ended;
  e.bytesOut = end.bytesOut;
  e.bytesIn = end.bytesIn;
  e.packetsOut = end.packetsOut;
  e.packetsIn = end.packetsIn;
}

/** Bytes read at a time when loading: a segment is never held whole as one string. */
const READ_CHUNK = 1 << 20;

/**
 * Calls `onLine` for each complete line of a file with its byte offset, reading it in
 * chunks (a whole 8 MiB segment as one string, split into lines, left about 90 MB of
 * garbage behind per 64 MiB of history, which the process kept as RSS). A last line
 * without "\n" is torn and not passed on; `tornAt` is its offset.
 */
async function readLines(
  path: string,
  onLine: (line: string, offset: number) => void,
): Promise<{ size: number; tornAt: number | null }> {
  const fh = await fsp.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    let carry: Buffer | null = null;
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      // The file offset of the chunk's first byte (the carried part included).
      const base = size - (carry?.length ?? 0);
      size += bytesRead;
      const chunk: Buffer = carry
        ? Buffer.concat([carry, buf.subarray(0, bytesRead)])
        : buf.subarray(0, bytesRead);
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
        if (nl > start) onLine(chunk.toString('utf8', start, nl), base + start);
        start = nl + 1;
      }
      // Copied: `buf` is overwritten by the next read.
      carry = start < chunk.length ? Buffer.from(chunk.subarray(start)) : null;
    }
    return { size, tornAt: carry !== null && carry.length > 0 ? size - carry.length : null };
  } finally {
    await fh.close();
  }
}

/** A segment's valid records in file order, and the offsets of its invalid lines. */
interface SegmentRecords {
  entries: HistoryEntry[];
  /** Byte offset of each entry's line. */
  offsets: number[];
  ends: EndRecord[];
  invalid: number[];
  size: number;
  tornAt: number | null;
}

type ProcessMap = Map<string, NonNullable<HistoryEntry['request']['process']>>;

/**
 * Reads a segment's records. With `processes`, entries of one process share one
 * ProcessInfo, as they do when recorded live: parsed line by line, each would carry
 * its own copy (about 60 % of an entry's memory).
 */
async function readSegment(path: string, processes?: ProcessMap): Promise<SegmentRecords> {
  const r: SegmentRecords = {
    entries: [],
    offsets: [],
    ends: [],
    invalid: [],
    size: 0,
    tornAt: null,
  };
  const read = await readLines(path, (line, offset) => {
    const parsed = parseLine(line);
    if (parsed.kind === 'entry') {
      const p = parsed.entry.request.process;
      if (p && processes) {
        // The whole content: a process may change uid or argv under the same pid.
        const key = JSON.stringify(p);
        const known = processes.get(key);
        if (known) parsed.entry.request.process = known;
        else processes.set(key, p);
      }
      r.entries.push(parsed.entry);
      r.offsets.push(offset);
    } else if (parsed.kind === 'end') r.ends.push(parsed.end);
    else r.invalid.push(offset);
  });
  r.size = read.size;
  r.tornAt = read.tornAt;
  return r;
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

function findSeq(entries: readonly HistoryEntry[], seq: number): HistoryEntry | undefined {
  const e = entries[lowerBound(entries, seq)];
  return e?.seq === seq ? e : undefined;
}

function addToBucket(b: SeriesBucket, e: HistoryEntry): void {
  if (e.action === 'allow') b.allowed++;
  else b.denied++;
  if (e.reason === 'prompt' || e.reason === 'default') b.prompted++;
  b.bytesOut += e.bytesOut ?? 0;
  b.bytesIn += e.bytesIn ?? 0;
}

/** The filters of a HistoryQuery (`needle`: its text, lower-cased, or ''). */
function queryMatches(e: HistoryEntry, q: HistoryQuery, needle: string): boolean {
  if (q.since !== undefined && e.decidedAt < q.since) return false;
  if (q.until !== undefined && e.decidedAt >= q.until) return false;
  if (q.action !== undefined && e.action !== q.action) return false;
  return needle === '' || textOf(e).includes(needle);
}

function textOf(e: HistoryEntry): string {
  const r = e.request;
  const p = r.process;
  // The command line as a shell shows it, so that `--text "-m http.server"` matches.
  const cmdline = p?.cmdline.join(' ');
  return [p?.exe, p?.comm, cmdline, p?.appId, p?.user, p?.unit, r.host, r.src, r.dst]
    .filter((x): x is string => typeof x === 'string')
    .join('\n')
    .toLowerCase();
}

export class HistoryStore {
  readonly dir: string;
  readonly #maxBytes: number;
  readonly #maxAge: number;
  readonly #segmentBytes: number;
  readonly #memoryEntries: number;
  readonly #flushInterval: number;
  readonly #clock: Clock;
  readonly #errorListeners = new Set<(e: HistoryError) => void>();
  /** Closed segments, oldest first; the one being written is #current. */
  readonly #segments: Segment[] = [];
  #current: Segment | null = null;
  #fh: fsp.FileHandle | null = null;
  /** Ascending seq. */
  #entries: HistoryEntry[] = [];
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
  /**
   * End records of entries that are only on disk (older than the memory window), for
   * the queries that read older segments: their end may be in a later segment than
   * they are (bounded).
   */
  readonly #diskEnds = new Map<number, EndRecord>();
  /** The entries of the older segments read last by a query (two at most). */
  readonly #segmentCache = new Map<string, HistoryEntry[]>();
  /** Empties the cache a minute after its last use: it is for paging, not for keeping. */
  #cacheTimer: TimerHandle | null = null;
  #report: LoadReport = {
    segments: 0,
    entries: 0,
    endRecords: 0,
    skippedLines: 0,
    tornLines: 0,
    damaged: [],
  };
  readonly #log: HistoryLog | undefined;

  private constructor(options: HistoryStoreOptions) {
    this.dir = join(options.dir, HISTORY_DIR);
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.#maxAge = options.maxAgeMs ?? 30 * 24 * 3600 * 1000;
    this.#segmentBytes = options.segmentBytes ?? Math.max(4096, Math.floor(this.#maxBytes / 8));
    this.#memoryEntries = options.memoryEntries ?? 200_000;
    this.#flushInterval = options.flushIntervalMs ?? 250;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
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
    return this.#report;
  }

  /** The sequence number the next append gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Entries in memory (the query window). */
  get size(): number {
    return this.#entries.length;
  }

  /** Segment files and their sizes, oldest first (for tests and the UI's storage figure). */
  segments(): { name: string; size: number }[] {
    const all = this.#current ? [...this.#segments, this.#current] : this.#segments;
    return all.map((s) => ({ name: s.name, size: s.size }));
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
    this.#entries.push(entry);
    // Trim in chunks: a splice per append would make appends O(window).
    const slack = Math.max(1024, this.#memoryEntries >> 3);
    if (this.#entries.length > this.#memoryEntries + slack) {
      this.#entries.splice(0, this.#entries.length - this.#memoryEntries);
    }
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
    const e = this.#find(seq);
    if (e) applyEnd(e, end);
    else if (!this.#loaded && seq < this.#runFirstSeq) {
      setNewest(this.#lateEnds, seq, end, 65_536);
      return true;
    } else if (seq < this.#memoryFirstSeq()) {
      this.#rememberDiskEnd(end);
      return true;
    }
    return e !== undefined;
  }

  query(q: HistoryQuery = {}): HistoryPage {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), MAX_LIMIT);
    const needle = q.text?.toLowerCase() ?? '';
    const out: HistoryEntry[] = [];
    let i = this.#entries.length - 1;
    if (q.beforeSeq !== undefined) i = this.#lowerBound(q.beforeSeq) - 1;
    for (; i >= 0; i--) {
      const e = this.#entries[i]!;
      if (!queryMatches(e, q, needle)) continue;
      if (out.length === limit) return { entries: out, nextBeforeSeq: out[out.length - 1]!.seq };
      out.push(cloneEntry(e));
    }
    return { entries: out, nextBeforeSeq: null };
  }

  /** Counts per time bucket over [since, until) for charts. */
  series(q: { since: number; until: number; bucketMs: number }): SeriesBucket[] {
    if (!(q.bucketMs > 0) || !(q.until > q.since)) return [];
    const n = Math.ceil((q.until - q.since) / q.bucketMs);
    if (n > MAX_BUCKETS) {
      throw new HistoryError('INVALID_QUERY', `series: ${n} buckets (at most ${MAX_BUCKETS})`);
    }
    const buckets: SeriesBucket[] = Array.from({ length: n }, (_, k) => ({
      start: q.since + k * q.bucketMs,
      allowed: 0,
      denied: 0,
      prompted: 0,
      bytesOut: 0,
      bytesIn: 0,
    }));
    for (const e of this.#entries) {
      if (e.decidedAt < q.since || e.decidedAt >= q.until) continue;
      addToBucket(buckets[Math.floor((e.decidedAt - q.since) / q.bucketMs)]!, e);
    }
    return buckets;
  }

  /** Which entries (newest first, up to limit) a rule match would have matched, and how many. */
  dryRun(
    match: RuleMatch,
    q: { since?: number; until?: number; limit?: number } = {},
  ): { entries: HistoryEntry[]; total: number } {
    const compiled = compileMatch(match);
    const limit = Math.min(Math.max(q.limit ?? 100, 0), MAX_LIMIT);
    const entries: HistoryEntry[] = [];
    let total = 0;
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i]!;
      if (q.since !== undefined && e.decidedAt < q.since) continue;
      if (q.until !== undefined && e.decidedAt >= q.until) continue;
      if (!matchesView(compiled, requestView(e.request))) continue;
      total++;
      if (entries.length < limit) entries.push(cloneEntry(e));
    }
    return { entries, total };
  }

  /**
   * query() over everything kept, not only the memory window: when the page is not
   * full from memory, older entries are read from the segments on disk (newest first;
   * the last two segments read are cached for the following pages). The helper's
   * `history.query` uses this.
   */
  async search(q: HistoryQuery = {}): Promise<HistoryPage> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), MAX_LIMIT);
    const page = this.query(q);
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

  /** series() over everything kept (older segments read from disk when `since` reaches them). */
  async seriesAll(q: { since: number; until: number; bucketMs: number }): Promise<SeriesBucket[]> {
    const buckets = this.series(q);
    if (buckets.length === 0) return buckets;
    for await (const e of this.#olderEntries(Infinity, q.since)) {
      if (e.decidedAt < q.since || e.decidedAt >= q.until) continue;
      addToBucket(buckets[Math.floor((e.decidedAt - q.since) / q.bucketMs)]!, e);
    }
    return buckets;
  }

  /** dryRun() over everything kept: the total counts the entries on disk too. */
  async dryRunAll(
    match: RuleMatch,
    q: { since?: number; until?: number; limit?: number } = {},
  ): Promise<{ entries: HistoryEntry[]; total: number }> {
    const result = this.dryRun(match, q);
    const compiled = compileMatch(match);
    const limit = Math.min(Math.max(q.limit ?? 100, 0), MAX_LIMIT);
    for await (const e of this.#olderEntries(Infinity, q.since)) {
      if (q.since !== undefined && e.decidedAt < q.since) continue;
      if (q.until !== undefined && e.decidedAt >= q.until) continue;
      if (!matchesView(compiled, requestView(e.request))) continue;
      result.total++;
      if (result.entries.length < limit) result.entries.push(cloneEntry(e));
    }
    return result;
  }

  /** The seq of the oldest entry in memory (everything below is only on disk). */
  #memoryFirstSeq(): number {
    return this.#entries[0]?.seq ?? this.#nextSeq;
  }

  #rememberDiskEnd(end: EndRecord): void {
    setNewest(this.#diskEnds, end.endOf, end, 65_536);
    for (const entries of this.#segmentCache.values()) {
      const e = findSeq(entries, end.endOf);
      if (e) applyEnd(e, end);
    }
  }

  /**
   * Entries older than the memory window and than `belowSeq`, newest first, read
   * segment by segment; stops at a segment whose newest time is before `since`.
   */
  async *#olderEntries(belowSeq: number, since?: number): AsyncGenerator<HistoryEntry> {
    if (!this.#loaded) return; // lazyLoad: queries wait for loaded() first
    const below = Math.min(belowSeq, this.#memoryFirstSeq());
    // The segment being written too: with a small window its first entries may have left it.
    const all = this.#current ? [...this.#segments, this.#current] : this.#segments;
    const older = all.filter((seg) => seg.firstSeq < below);
    for (let k = older.length - 1; k >= 0; k--) {
      const seg = older[k]!;
      if (since !== undefined && seg.lastTime !== 0 && seg.lastTime < since) return;
      const entries = await this.#segmentEntries(seg);
      for (let i = entries.length - 1; i >= 0; i--) {
        if (entries[i]!.seq < below) yield entries[i]!;
      }
    }
  }

  /** One segment's entries (oldest first) with the end records known for them; cached. */
  async #segmentEntries(seg: Segment): Promise<HistoryEntry[]> {
    this.#touchCache();
    const cached = this.#segmentCache.get(seg.name);
    if (cached) {
      setNewest(this.#segmentCache, seg.name, cached, 2);
      return cached;
    }
    let recs: SegmentRecords;
    try {
      recs = await readSegment(join(this.dir, seg.name));
    } catch (e) {
      // Deleted by the limits meanwhile: its entries are gone.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new HistoryError('IO', `reading ${seg.name}: ${(e as Error).message}`, { cause: e });
    }
    // The same entries as at load (the damage was logged then).
    const keep = longestInOrder(
      recs.entries.map((e) => e.seq),
      seg.floor,
      this.#ceiling(seg),
    );
    const entries = recs.entries.filter((_, i) => keep[i]);
    for (const end of recs.ends) {
      const target = findSeq(entries, end.endOf);
      if (target) applyEnd(target, end);
      else this.#rememberDiskEnd(end);
    }
    for (const e of entries) {
      const end = this.#diskEnds.get(e.seq);
      if (end && e.ended === null) applyEnd(e, end);
    }
    setNewest(this.#segmentCache, seg.name, entries, 2);
    return entries;
  }

  /** Every entry of a segment is below the next segment's first seq (the name says). */
  #ceiling(seg: Segment): number {
    const all = this.#current ? [...this.#segments, this.#current] : this.#segments;
    return all.find((s) => s.firstSeq > seg.firstSeq)?.firstSeq ?? Infinity;
  }

  #touchCache(): void {
    if (this.#cacheTimer !== null) this.#clock.clearTimeout(this.#cacheTimer);
    this.#cacheTimer = this.#clock.setTimeout(() => {
      this.#cacheTimer = null;
      this.#segmentCache.clear();
    }, SEGMENT_CACHE_MS);
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
    if (this.#cacheTimer !== null) this.#clock.clearTimeout(this.#cacheTimer);
    this.#cacheTimer = null;
    this.#segmentCache.clear();
    const fh = this.#fh;
    this.#fh = null;
    if (fh) {
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
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
        this.flush().catch((e: unknown) => this.#report_(e));
      }, this.#flushInterval);
    }
  }

  #report_(e: unknown): void {
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
    try {
      if (!this.#fh || !this.#current) await this.#startSegment(firstSeq);
      const seg = this.#current!;
      await this.#fh!.write(data);
      seg.size += Buffer.byteLength(data);
      seg.lastTime = Math.max(seg.lastTime, lastTime);
      if (seg.size >= this.#segmentBytes) await this.#rotate();
      await this.#enforceLimits();
    } catch (e) {
      throw new HistoryError('IO', `writing history to ${this.dir}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  async #startSegment(firstSeq: number): Promise<void> {
    // Named after the first entry it holds, and never an existing file (a
    // segment of end records only may already carry that number).
    let first = firstSeq;
    for (const s of this.#segments) first = Math.max(first, s.firstSeq + 1);
    const name = segmentName(first);
    this.#fh = await fsp.open(join(this.dir, name), 'a', 0o600);
    this.#current = { name, firstSeq: first, size: 0, lastTime: 0, floor: 0 };
  }

  async #rotate(): Promise<void> {
    const fh = this.#fh;
    const seg = this.#current;
    this.#fh = null;
    this.#current = null;
    if (seg) this.#segments.push(seg);
    if (fh) {
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }

  /** Deletes the oldest closed segments past the age limit or while over the size limit. */
  async #enforceLimits(): Promise<void> {
    const now = this.#clock.now();
    let total = this.#segments.reduce((n, s) => n + s.size, this.#current?.size ?? 0);
    let deleted = 0;
    while (this.#segments.length > 0) {
      const oldest = this.#segments[0]!;
      const tooOld = oldest.lastTime < now - this.#maxAge;
      // The size limit never deletes the newest data: with no segment open, the
      // last closed one stays even if a single batch made it larger than maxBytes.
      const isNewest = this.#current === null && this.#segments.length === 1;
      if (!tooOld && (total <= this.#maxBytes || isNewest)) break;
      await fsp.unlink(join(this.dir, oldest.name));
      this.#segmentCache.delete(oldest.name);
      this.#segments.shift();
      total -= oldest.size;
      deleted++;
    }
    if (deleted > 0) {
      // Forget entries whose segment is gone, so queries see what is on disk.
      const first = this.#segments[0]?.firstSeq ?? this.#current?.firstSeq ?? this.#nextSeq;
      const keep = this.#lowerBound(first);
      if (keep > 0) this.#entries.splice(0, keep);
    }
  }

  #lowerBound(seq: number): number {
    return lowerBound(this.#entries, seq);
  }

  #find(seq: number): HistoryEntry | undefined {
    return findSeq(this.#entries, seq);
  }

  /** lazyLoad's open: segment names, sizes and times, and the newest segment's highest seq. */
  async #scan(): Promise<void> {
    const found = await this.#segmentFiles();
    let maxSeq = 0;
    for (const { name, firstSeq } of found) {
      let st: Awaited<ReturnType<typeof fsp.stat>>;
      try {
        st = await fsp.stat(join(this.dir, name));
      } catch (e) {
        throw new HistoryError('IO', `reading ${name}: ${(e as Error).message}`, { cause: e });
      }
      // The file's mtime stands for its newest record's time until it is loaded.
      this.#segments.push({ name, firstSeq, size: st.size, lastTime: st.mtimeMs, floor: 0 });
      this.#report.segments++;
      maxSeq = Math.max(maxSeq, firstSeq);
    }
    const newest = found[found.length - 1];
    if (newest) {
      try {
        // Only the leading number of each line: entries start {"seq":N, end records {"endOf":N.
        await readLines(join(this.dir, newest.name), (line) => {
          const m = /^\{"(?:seq|endOf)":(\d{1,15})[,}]/u.exec(line);
          if (m) maxSeq = Math.max(maxSeq, Number(m[1]));
        });
      } catch (e) {
        throw new HistoryError('IO', `reading ${newest.name}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    this.#nextSeq = maxSeq + 1;
    this.#runFirstSeq = this.#nextSeq;
    this.#loaded = found.length === 0;
    try {
      await this.#enforceLimits();
    } catch (e) {
      throw new HistoryError('IO', `trimming ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** lazyLoad: reads the segments that were there at open and puts their entries before this run's. */
  async #loadOlder(): Promise<void> {
    const older = this.#segments.filter((s) => s.firstSeq < this.#runFirstSeq);
    const { entries } = await this.#parseSegments(older, this.#runFirstSeq, true);
    for (const e of entries) {
      const end = this.#lateEnds.get(e.seq);
      if (end) applyEnd(e, end);
    }
    this.#lateEnds.clear();
    // Segments deleted meanwhile by the limits took their entries with them.
    const first = this.#segments[0]?.firstSeq ?? this.#current?.firstSeq ?? this.#nextSeq;
    const kept = entries.filter((e) => e.seq >= first);
    const merged = kept.concat(this.#entries);
    this.#entries =
      merged.length > this.#memoryEntries ? merged.slice(-this.#memoryEntries) : merged;
    this.#loaded = true;
  }

  async #segmentFiles(): Promise<{ name: string; firstSeq: number }[]> {
    let names: string[];
    try {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      names = await fsp.readdir(this.dir);
    } catch (e) {
      throw new HistoryError('IO', `preparing ${this.dir}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    return names
      .map((name) => ({ name, firstSeq: parseSegmentName(name) }))
      .filter((s): s is { name: string; firstSeq: number } => s.firstSeq !== undefined)
      .sort((a, b) => a.firstSeq - b.firstSeq);
  }

  async #load(): Promise<void> {
    const segs: Segment[] = (await this.#segmentFiles()).map(({ name, firstSeq }) => ({
      name,
      firstSeq,
      size: 0,
      lastTime: 0,
      floor: 0,
    }));
    const { entries, maxSeq } = await this.#parseSegments(segs, Infinity, false);
    this.#segments.push(...segs);
    this.#report.segments += segs.length;
    this.#entries =
      entries.length > this.#memoryEntries ? entries.slice(-this.#memoryEntries) : entries;
    this.#nextSeq = maxSeq + 1;
    this.#runFirstSeq = this.#nextSeq;
    try {
      await this.#enforceLimits();
    } catch (e) {
      throw new HistoryError('IO', `trimming ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Parses segment files, oldest first: the newest `memoryEntries` entries with a seq
   * below `belowSeq`, their end records applied. At open (`lazy` false) each
   * segment's size and newest time are set from what was read; later (lazy) a file
   * the limits deleted meanwhile is skipped. Damaged lines are skipped, counted and
   * logged; a seq out of order costs only its own line (longestInOrder).
   */
  async #parseSegments(
    segs: readonly Segment[],
    belowSeq: number,
    lazy: boolean,
  ): Promise<{ entries: HistoryEntry[]; maxSeq: number }> {
    let entries: HistoryEntry[] = [];
    const report = this.#report;
    let maxSeq = 0;
    // The highest seq kept so far: a later segment's entries are above it.
    let floor = 0;
    const processes: ProcessMap = new Map();
    const window = this.#memoryEntries;
    for (let k = 0; k < segs.length; k++) {
      const seg = segs[k]!;
      const path = join(this.dir, seg.name);
      let recs: SegmentRecords;
      try {
        recs = await readSegment(path, processes);
      } catch (e) {
        if (lazy && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new HistoryError('IO', `reading ${seg.name}: ${(e as Error).message}`, {
          cause: e,
        });
      }
      seg.floor = floor;
      const ceiling = Math.min(belowSeq, segs[k + 1]?.firstSeq ?? Infinity);
      const keep = longestInOrder(
        recs.entries.map((e) => e.seq),
        floor,
        ceiling,
      );
      const damaged = [...recs.invalid];
      let outOfOrder = 0;
      for (let i = 0; i < recs.entries.length; i++) {
        const e = recs.entries[i]!;
        if (!keep[i]) {
          damaged.push(recs.offsets[i]!);
          outOfOrder++;
          continue;
        }
        floor = e.seq;
        maxSeq = Math.max(maxSeq, e.seq);
        entries.push(e);
        report.entries++;
        if (!lazy) seg.lastTime = Math.max(seg.lastTime, e.decidedAt);
      }
      for (const end of recs.ends) {
        report.endRecords++;
        maxSeq = Math.max(maxSeq, end.endOf);
        if (!lazy) seg.lastTime = Math.max(seg.lastTime, end.ended);
        const target = findSeq(entries, end.endOf);
        if (target) applyEnd(target, end);
        // Its entry left the window already (or is in an older segment): kept for
        // the queries that read older segments.
        else this.#rememberDiskEnd(end);
      }
      // Only the newest `window` stay: trimmed as it goes, in chunks.
      if (entries.length > window + Math.max(1024, window >> 3)) {
        entries = entries.slice(-window);
      }
      if (!lazy) seg.size = recs.size;
      if (recs.tornAt !== null) {
        report.tornLines++;
        damaged.push(recs.tornAt);
      }
      if (damaged.length > 0) {
        damaged.sort((a, b) => a - b);
        this.#damaged({
          file: path,
          count: damaged.length,
          offsets: damaged.slice(0, MAX_DAMAGE_OFFSETS),
          invalid: recs.invalid.length,
          outOfOrder,
          torn: recs.tornAt !== null ? 1 : 0,
        });
      }
    }
    return { entries, maxSeq };
  }

  #damaged(d: SegmentDamage): void {
    this.#report.skippedLines += d.count;
    this.#report.damaged.push(d);
    const more = d.count > LOGGED_OFFSETS ? ',...' : '';
    this.#log?.warn('history', `skipped ${d.count} damaged line(s) of a history segment`, {
      file: d.file,
      offset: d.offsets[0],
      count: d.count,
      offsets: d.offsets.slice(0, LOGGED_OFFSETS).join(',') + more,
      invalid: d.invalid,
      outOfOrder: d.outOfOrder,
      torn: d.torn,
    });
  }
}
