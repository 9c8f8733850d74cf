/**
 * The history on disk: the segment files, written in batches and rotated by size,
 * deleted whole by the size and age limits, parsed at load, and read back for the
 * queries that reach past the memory window.
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { HistoryEntry } from '../protocol/model.js';
import type { Clock, TimerHandle } from '../common/clock.js';
import { setNewest } from '../common/bounded-map.js';
import { applyEnd, findSeq } from './entries.js';
import { HistoryError } from './errors.js';
import { readLines, readSegment, type ProcessMap, type SegmentRecords } from './segment-reader.js';
import { longestInOrder, parseSegmentName, segmentName, type EndRecord } from './segments.js';
import type { HistoryLog, LoadReport, SegmentDamage } from './types.js';

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

const SEGMENT_CACHE_MS = 60_000;
const MAX_DAMAGE_OFFSETS = 100;
/** Offsets named in a damage warning: the log line stays short. */
const LOGGED_OFFSETS = 20;

export interface DiskSegmentsOptions {
  /** The folder of the segment files (STATEDIR/history). */
  dir: string;
  maxBytes: number;
  maxAgeMs: number;
  segmentBytes: number;
  /** How many of the newest entries a load keeps (the memory window's capacity). */
  window: number;
  clock: Clock;
  log: HistoryLog | undefined;
  /** The seq the next append gets: where the history starts when no segment is left. */
  nextSeq: () => number;
  /** The limits deleted segments: the entries below `firstSeq` are gone. */
  onDeleted: (firstSeq: number) => void;
}

export class DiskSegments {
  readonly dir: string;
  readonly #o: DiskSegmentsOptions;
  /** Closed segments, oldest first; the one being written is #current. */
  readonly #segments: Segment[] = [];
  #current: Segment | null = null;
  #fh: fsp.FileHandle | null = null;
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
  readonly #report: LoadReport = {
    segments: 0,
    entries: 0,
    endRecords: 0,
    skippedLines: 0,
    tornLines: 0,
    damaged: [],
  };

  constructor(options: DiskSegmentsOptions) {
    this.dir = options.dir;
    this.#o = options;
  }

  /** What loading found: damaged lines are skipped, counted here and logged (`log`). */
  get report(): Readonly<LoadReport> {
    return this.#report;
  }

  /** Segment files and their sizes, oldest first. */
  list(): { name: string; size: number }[] {
    return this.#all().map((s) => ({ name: s.name, size: s.size }));
  }

  /** The lowest seq the segments can hold: entries below it were deleted with their segment. */
  firstSeq(): number {
    return this.#segments[0]?.firstSeq ?? this.#current?.firstSeq ?? this.#o.nextSeq();
  }

  #all(): Segment[] {
    return this.#current ? [...this.#segments, this.#current] : this.#segments;
  }

  /**
   * Lists the segments without parsing them (names, sizes, and the file's mtime as the
   * newest record's time) and finds the highest seq in the newest one.
   */
  async scan(): Promise<{ found: number; maxSeq: number }> {
    const found = await this.#segmentFiles();
    let maxSeq = 0;
    for (const { name, firstSeq } of found) {
      let st: Awaited<ReturnType<typeof fsp.stat>>;
      try {
        st = await fsp.stat(join(this.dir, name));
      } catch (e) {
        throw new HistoryError('IO', `reading ${name}: ${(e as Error).message}`, { cause: e });
      }
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
    return { found: found.length, maxSeq };
  }

  /** Parses every segment: the newest `window` entries, and the highest seq seen. */
  async loadAll(): Promise<{ entries: HistoryEntry[]; maxSeq: number }> {
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
    return {
      entries: entries.length > this.#o.window ? entries.slice(-this.#o.window) : entries,
      maxSeq,
    };
  }

  /** Parses the segments listed by scan(): the newest `window` entries below `belowSeq`. */
  async loadBelow(belowSeq: number): Promise<HistoryEntry[]> {
    const older = this.#segments.filter((s) => s.firstSeq < belowSeq);
    const { entries } = await this.#parseSegments(older, belowSeq, true);
    return entries;
  }

  /** Applies the limits now (after opening). */
  async trim(): Promise<void> {
    try {
      await this.#enforceLimits();
    } catch (e) {
      throw new HistoryError('IO', `trimming ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Appends lines to the segment being written (a new one, named after `firstSeq`, if
   * none is), then rotates and applies the limits.
   */
  async write(data: string, lastTime: number, firstSeq: number): Promise<void> {
    try {
      if (!this.#fh || !this.#current) await this.#startSegment(firstSeq);
      const seg = this.#current!;
      await this.#fh!.write(data);
      seg.size += Buffer.byteLength(data);
      seg.lastTime = Math.max(seg.lastTime, lastTime);
      if (seg.size >= this.#o.segmentBytes) await this.#rotate();
      await this.#enforceLimits();
    } catch (e) {
      throw new HistoryError('IO', `writing history to ${this.dir}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /** Keeps the end record of an entry that is only on disk, for the queries that read it. */
  rememberEnd(end: EndRecord): void {
    setNewest(this.#diskEnds, end.endOf, end, 65_536);
    for (const entries of this.#segmentCache.values()) {
      const e = findSeq(entries, end.endOf);
      if (e) applyEnd(e, end);
    }
  }

  /**
   * Entries below `belowSeq`, newest first, read segment by segment; stops at a
   * segment whose newest time is before `since`.
   */
  async *entriesBelow(belowSeq: number, since?: number): AsyncGenerator<HistoryEntry> {
    // The segment being written too: with a small window its first entries may have left it.
    const older = this.#all().filter((seg) => seg.firstSeq < belowSeq);
    for (let k = older.length - 1; k >= 0; k--) {
      const seg = older[k]!;
      if (since !== undefined && seg.lastTime !== 0 && seg.lastTime < since) return;
      const entries = await this.#segmentEntries(seg);
      for (let i = entries.length - 1; i >= 0; i--) {
        if (entries[i]!.seq < belowSeq) yield entries[i]!;
      }
    }
  }

  /** Stops the cache timer, fsyncs and closes the segment being written. */
  async close(): Promise<void> {
    if (this.#cacheTimer !== null) this.#o.clock.clearTimeout(this.#cacheTimer);
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
      else this.rememberEnd(end);
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
    return this.#all().find((s) => s.firstSeq > seg.firstSeq)?.firstSeq ?? Infinity;
  }

  #touchCache(): void {
    const clock = this.#o.clock;
    if (this.#cacheTimer !== null) clock.clearTimeout(this.#cacheTimer);
    this.#cacheTimer = clock.setTimeout(() => {
      this.#cacheTimer = null;
      this.#segmentCache.clear();
    }, SEGMENT_CACHE_MS);
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
    const now = this.#o.clock.now();
    let total = this.#segments.reduce((n, s) => n + s.size, this.#current?.size ?? 0);
    let deleted = 0;
    while (this.#segments.length > 0) {
      const oldest = this.#segments[0]!;
      const tooOld = oldest.lastTime < now - this.#o.maxAgeMs;
      // The size limit never deletes the newest data: with no segment open, the
      // last closed one stays even if a single batch made it larger than maxBytes.
      const isNewest = this.#current === null && this.#segments.length === 1;
      if (!tooOld && (total <= this.#o.maxBytes || isNewest)) break;
      await fsp.unlink(join(this.dir, oldest.name));
      this.#segmentCache.delete(oldest.name);
      this.#segments.shift();
      total -= oldest.size;
      deleted++;
    }
    // Entries whose segment is gone leave memory too, so queries see what is on disk.
    if (deleted > 0) this.#o.onDeleted(this.firstSeq());
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

  /**
   * Parses segment files, oldest first: the newest `window` entries with a seq
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
    const window = this.#o.window;
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
        else this.rememberEnd(end);
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
    this.#o.log?.warn('history', `skipped ${d.count} damaged line(s) of a history segment`, {
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
