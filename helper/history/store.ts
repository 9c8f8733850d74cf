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
import { HistoryError } from './errors.js';
import {
  parseLine,
  parseSegmentName,
  segmentName,
  splitLines,
  type EndRecord,
} from './segments.js';

export const HISTORY_DIR = 'history';

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
  clock?: Clock;
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
}

export interface LoadReport {
  segments: number;
  entries: number;
  endRecords: number;
  /** Lines that were not valid JSON records, torn trailing lines included. */
  skippedLines: number;
  tornLines: number;
}

interface Segment {
  name: string;
  firstSeq: number;
  size: number;
  /** Newest decidedAt/ended in the segment; for age-based deletion. */
  lastTime: number;
}

const MAX_LIMIT = 10_000;
const MAX_BUCKETS = 10_000;

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

/** First index whose seq is >= `seq` in an ascending array. */
function lowerBound(entries: readonly HistoryEntry[], seq: number): number {
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

function textOf(e: HistoryEntry): string {
  const r = e.request;
  const p = r.process;
  return [p?.exe, p?.comm, p?.appId, p?.user, p?.unit, r.host, r.src, r.dst]
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
  #buffer: string[] = [];
  #bufferLastTime = 0;
  /** Seq of the first entry in the buffer: a new segment is named after it. */
  #bufferFirstSeq: number | null = null;
  #timer: TimerHandle | null = null;
  #writing: Promise<void> = Promise.resolve();
  #nextSeq = 1;
  #closed = false;
  #report: LoadReport = { segments: 0, entries: 0, endRecords: 0, skippedLines: 0, tornLines: 0 };

  private constructor(options: HistoryStoreOptions) {
    this.dir = join(options.dir, HISTORY_DIR);
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.#maxAge = options.maxAgeMs ?? 30 * 24 * 3600 * 1000;
    this.#segmentBytes = options.segmentBytes ?? Math.max(4096, Math.floor(this.#maxBytes / 8));
    this.#memoryEntries = options.memoryEntries ?? 200_000;
    this.#flushInterval = options.flushIntervalMs ?? 250;
    this.#clock = options.clock ?? systemClock;
  }

  static async open(options: HistoryStoreOptions): Promise<HistoryStore> {
    const store = new HistoryStore(options);
    await store.#load();
    return store;
  }

  /** What loading found: torn and corrupt lines are skipped and counted here. */
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
    this.#queue(JSON.stringify(entry), entry.decidedAt);
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
    this.#queue(JSON.stringify(end), end.ended);
    const e = this.#find(seq);
    if (e) applyEnd(e, end);
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
      if (q.since !== undefined && e.decidedAt < q.since) continue;
      if (q.until !== undefined && e.decidedAt >= q.until) continue;
      if (q.action !== undefined && e.action !== q.action) continue;
      if (needle !== '' && !textOf(e).includes(needle)) continue;
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
    }));
    for (const e of this.#entries) {
      if (e.decidedAt < q.since || e.decidedAt >= q.until) continue;
      const b = buckets[Math.floor((e.decidedAt - q.since) / q.bucketMs)]!;
      if (e.action === 'allow') b.allowed++;
      else b.denied++;
      if (e.reason === 'prompt' || e.reason === 'default') b.prompted++;
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

  #queue(line: string, time: number): void {
    this.#buffer.push(line);
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
    const lines = this.#buffer;
    const lastTime = this.#bufferLastTime;
    const firstSeq = this.#bufferFirstSeq ?? this.#nextSeq;
    this.#buffer = [];
    this.#bufferLastTime = 0;
    this.#bufferFirstSeq = null;
    const data = `${lines.join('\n')}\n`;
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
    this.#current = { name, firstSeq: first, size: 0, lastTime: 0 };
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

  async #load(): Promise<void> {
    let names: string[];
    try {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      names = await fsp.readdir(this.dir);
    } catch (e) {
      throw new HistoryError('IO', `preparing ${this.dir}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const found = names
      .map((name) => ({ name, firstSeq: parseSegmentName(name) }))
      .filter((s): s is { name: string; firstSeq: number } => s.firstSeq !== undefined)
      .sort((a, b) => a.firstSeq - b.firstSeq);
    const entries: HistoryEntry[] = [];
    const report = this.#report;
    let maxSeq = 0;
    // Entries of one process share one ProcessInfo, as they do when recorded live:
    // parsed line by line, each would carry its own copy (about 60 % of an entry's memory).
    const processes = new Map<string, NonNullable<HistoryEntry['request']['process']>>();
    for (const { name, firstSeq } of found) {
      let text: string;
      try {
        text = await fsp.readFile(join(this.dir, name), 'utf8');
      } catch (e) {
        throw new HistoryError('IO', `reading ${name}: ${(e as Error).message}`, { cause: e });
      }
      const seg: Segment = { name, firstSeq, size: Buffer.byteLength(text), lastTime: 0 };
      const { lines, torn } = splitLines(text);
      if (torn) {
        report.tornLines++;
        report.skippedLines++;
      }
      for (const line of lines) {
        const parsed = parseLine(line);
        if (parsed.kind === 'bad') {
          report.skippedLines++;
        } else if (parsed.kind === 'entry') {
          const e = parsed.entry;
          // Out-of-order or repeated seqs can only come from damage: keep the first.
          if (e.seq <= maxSeq) {
            report.skippedLines++;
            continue;
          }
          maxSeq = e.seq;
          const p = e.request.process;
          if (p) {
            // The whole content: a process may change uid or argv under the same pid.
            const key = JSON.stringify(p);
            const known = processes.get(key);
            if (known) e.request.process = known;
            else processes.set(key, p);
          }
          entries.push(e);
          report.entries++;
          seg.lastTime = Math.max(seg.lastTime, e.decidedAt);
        } else {
          report.endRecords++;
          maxSeq = Math.max(maxSeq, parsed.end.endOf);
          seg.lastTime = Math.max(seg.lastTime, parsed.end.ended);
          const target = findSeq(entries, parsed.end.endOf);
          if (target) applyEnd(target, parsed.end);
        }
      }
      this.#segments.push(seg);
      report.segments++;
    }
    this.#entries =
      entries.length > this.#memoryEntries ? entries.slice(-this.#memoryEntries) : entries;
    this.#nextSeq = maxSeq + 1;
    try {
      await this.#enforceLimits();
    } catch (e) {
      throw new HistoryError('IO', `trimming ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }
}
