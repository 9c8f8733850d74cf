/** Reading segment files: line by line in chunks, and parsed into records. */
import * as fsp from 'node:fs/promises';
import type { HistoryEntry } from '../protocol/model.js';
import { parseLine, type EndRecord } from './segments.js';

/** Bytes read at a time when loading: a segment is never held whole as one string. */
const READ_CHUNK = 1 << 20;

/**
 * Calls `onLine` for each complete line of a file with its byte offset, reading it in
 * chunks (a whole 8 MiB segment as one string, split into lines, left about 90 MB of
 * garbage behind per 64 MiB of history, which the process kept as RSS). A last line
 * without "\n" is torn and not passed on; `tornAt` is its offset.
 */
export async function readLines(
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
export interface SegmentRecords {
  entries: HistoryEntry[];
  /** Byte offset of each entry's line. */
  offsets: number[];
  ends: EndRecord[];
  invalid: number[];
  size: number;
  tornAt: number | null;
}

export type ProcessMap = Map<string, NonNullable<HistoryEntry['request']['process']>>;

/**
 * Reads a segment's records. With `processes`, entries of one process share one
 * ProcessInfo, as they do when recorded live: parsed line by line, each would carry
 * its own copy (about 60 % of an entry's memory).
 */
export async function readSegment(path: string, processes?: ProcessMap): Promise<SegmentRecords> {
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
