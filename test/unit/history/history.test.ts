import fc from 'fast-check';
import { appendFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HistoryStore,
  segmentName,
  type HistoryInput,
  type HistoryQuery,
  type HistoryStoreOptions,
} from '../../../helper/history/index.js';
import type { Action, VerdictReason } from '../../../helper/protocol/model.js';
import { ManualClock, proc, req } from '../decisions/fixtures.js';

let dir: string;
let clock: ManualClock;
const stores: HistoryStore[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-history-'));
  clock = new ManualClock(1_700_000_000_000);
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function open(over: Partial<HistoryStoreOptions> = {}): Promise<HistoryStore> {
  const s = await HistoryStore.open({ dir, clock, flushIntervalMs: 100, ...over });
  stores.push(s);
  return s;
}

function input(i: number, over: Partial<HistoryInput> = {}): HistoryInput {
  return {
    request: req({
      dport: 1000 + i,
      host: i % 2 === 0 ? `h${i}.example.com` : null,
      dst: `192.0.2.${i % 250}`,
      process: proc({
        exe: i % 3 === 0 ? '/usr/bin/firefox' : '/usr/bin/curl',
        user: i % 5 === 0 ? 'bob' : 'alice',
      }),
    }),
    action: i % 4 === 0 ? 'deny' : 'allow',
    reason: (['rule', 'prompt', 'default', 'no-gui'] as VerdictReason[])[i % 4]!,
    ruleId: null,
    decidedAt: clock.now(),
    ...over,
  };
}

const histDir = () => join(dir, 'history');
async function diskText(): Promise<string> {
  const names = (await readdir(histDir())).sort();
  const parts = await Promise.all(names.map((n) => readFile(join(histDir(), n), 'utf8')));
  return parts.join('');
}

describe('appending and querying', () => {
  it('assigns sequence numbers and answers newest first with filters', async () => {
    const s = await open();
    for (let i = 0; i < 20; i++) {
      s.append(input(i));
      clock.advance(1000);
    }
    const all = s.queryMemory({ limit: 100 });
    expect(all.entries.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 20 - i));
    expect(all.nextBeforeSeq).toBeNull();
    const t0 = 1_700_000_000_000;
    expect(s.queryMemory({ since: t0 + 5000, until: t0 + 8000 }).entries.map((e) => e.seq)).toEqual(
      [8, 7, 6],
    );
    expect(s.queryMemory({ action: 'deny' }).entries.every((e) => e.action === 'deny')).toBe(true);
    expect(s.queryMemory({ action: 'deny' }).entries).toHaveLength(5);
    expect(s.queryMemory({ text: 'FIREFOX' }).entries.map((e) => e.seq)).toEqual([
      19, 16, 13, 10, 7, 4, 1,
    ]);
    expect(s.queryMemory({ text: 'h4.example' }).entries.map((e) => e.seq)).toEqual([5]);
    expect(s.queryMemory({ text: '192.0.2.17' }).entries.map((e) => e.seq)).toEqual([18]);
    expect(s.queryMemory({ text: 'bob' }).entries.map((e) => e.seq)).toEqual([16, 11, 6, 1]);
  });

  it('text matches the command line, its arguments joined by spaces', async () => {
    const s = await open();
    const python = proc({ exe: '/usr/bin/python3.11', cmdline: ['python3', '-m', 'http.server'] });
    s.append(input(1, { request: req({ process: python }) }));
    s.append(input(2));
    expect(s.queryMemory({ text: '-m HTTP.server' }).entries.map((e) => e.seq)).toEqual([1]);
    expect(s.queryMemory({ text: 'curl https://' }).entries.map((e) => e.seq)).toEqual([2]);
    expect(s.queryMemory({ text: 'http.server --bind' }).entries).toEqual([]);
  });

  it('pages with beforeSeq', async () => {
    const s = await open();
    for (let i = 0; i < 7; i++) s.append(input(i));
    const p1 = s.queryMemory({ limit: 3 });
    expect(p1.entries.map((e) => e.seq)).toEqual([7, 6, 5]);
    const p2 = s.queryMemory({ limit: 3, beforeSeq: p1.nextBeforeSeq! });
    expect(p2.entries.map((e) => e.seq)).toEqual([4, 3, 2]);
    const p3 = s.queryMemory({ limit: 3, beforeSeq: p2.nextBeforeSeq! });
    expect(p3).toEqual({ entries: [expect.objectContaining({ seq: 1 })], nextBeforeSeq: null });
  });

  it('batches writes: nothing on disk until the interval, then one write', async () => {
    const s = await open();
    s.append(input(0));
    s.append(input(1));
    expect(await diskText()).toBe('');
    expect(clock.pending).toBe(1);
    clock.advance(100);
    await s.flush();
    expect((await diskText()).trim().split('\n')).toHaveLength(2);
  });

  it('markEnded fills in counters, in memory and after a reload', async () => {
    const s = await open();
    const e = s.append(input(0));
    s.append(input(1));
    expect(
      s.markEnded(e.seq, {
        ended: clock.now() + 5,
        bytesOut: 10,
        bytesIn: 20,
        packetsOut: 1,
        packetsIn: 2,
      }),
    ).toBe(true);
    expect(s.markEnded(999, { ended: 1 })).toBe(false);
    expect(s.queryMemory({}).entries[1]).toMatchObject({
      seq: 1,
      bytesOut: 10,
      bytesIn: 20,
      ended: clock.now() + 5,
    });
    await s.close();
    // Lines are made when written: an entry that ended before the flush already
    // carries its end, and its end record follows (applying it again changes nothing).
    const lines = (await diskText())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ seq: 1, bytesOut: 10, ended: clock.now() + 5 });
    expect(lines).toContainEqual(expect.objectContaining({ endOf: 1, bytesOut: 10 }));
    const again = await open();
    expect(again.queryMemory({}).entries[1]).toMatchObject({ seq: 1, bytesOut: 10, packetsIn: 2 });
    expect(again.loadReport).toMatchObject({ entries: 2, endRecords: 2, skippedLines: 0 });
    expect(again.nextSeq).toBe(1000);
  });
});

describe('loading damaged files', () => {
  it('skips a torn trailing line and corrupt lines, counting them, and writes a new segment', async () => {
    const s = await open();
    for (let i = 0; i < 3; i++) s.append(input(i));
    await s.close();
    const [name] = await readdir(histDir());
    await appendFile(join(histDir(), name!), 'not json\n{"seq":4,"request":');
    const again = await open();
    expect(again.loadReport).toMatchObject({ entries: 3, skippedLines: 2, tornLines: 1 });
    expect(again.queryMemory({}).entries.map((e) => e.seq)).toEqual([3, 2, 1]);
    again.append(input(3));
    await again.close();
    // The torn file is left as it was; the new entry went to a new segment.
    expect((await readdir(histDir())).sort()).toEqual([name, segmentName(4)].sort());
    const third = await open();
    expect(third.queryMemory({}).entries.map((e) => e.seq)).toEqual([4, 3, 2, 1]);
    expect(third.loadReport.tornLines).toBe(1);
  });

  it('ignores files that are not segments', async () => {
    await open();
    await writeFile(join(histDir(), 'notes.txt'), 'hello');
    const s = await open();
    expect(s.loadReport.segments).toBe(0);
  });
});

describe('loading', () => {
  it('entries of one process share one ProcessInfo after a reload; a changed process does not', async () => {
    const a = await open();
    for (let i = 0; i < 30; i++) a.append(input(i));
    await a.close();
    stores.splice(stores.indexOf(a), 1);
    const b = await open();
    const entries = b.queryMemory({ limit: 100 }).entries;
    expect(entries).toHaveLength(30);
    const byContent = new Map<string, unknown>();
    for (const e of entries) {
      const p = e.request.process!;
      const key = JSON.stringify(p);
      const first = byContent.get(key);
      if (first) expect(p).toBe(first);
      else byContent.set(key, p);
    }
    // firefox/curl x alice/bob: four different processes, each kept intact.
    expect(byContent.size).toBe(4);
    expect(new Set(entries.map((e) => e.request.process!.user))).toEqual(new Set(['alice', 'bob']));
  });
});

describe('lazy loading', () => {
  it('reads older entries only when asked, after this run’s, with ends recorded meanwhile', async () => {
    const a = await open();
    for (let i = 0; i < 40; i++) a.append(input(i));
    await a.close();
    stores.splice(stores.indexOf(a), 1);

    const b = await open({ lazyLoad: true });
    expect(b.isLoaded).toBe(false);
    // The next sequence number continues after the disk's, though nothing was parsed.
    expect(b.nextSeq).toBe(41);
    expect(b.loadReport.entries).toBe(0);
    expect(b.size).toBe(0);
    const fresh = b.append(input(100));
    expect(fresh.seq).toBe(41);
    // An old flow ends before its entry is loaded: the end is kept for the load.
    expect(b.markEnded(7, { ended: clock.now(), bytesOut: 70, bytesIn: 7 })).toBe(true);
    expect(b.queryMemory({ limit: 100 }).entries.map((e) => e.seq)).toEqual([41]);

    await Promise.all([b.loaded(), b.loaded()]);
    expect(b.isLoaded).toBe(true);
    expect(b.loadReport.entries).toBe(40);
    const seqs = b.queryMemory({ limit: 100 }).entries.map((e) => e.seq);
    expect(seqs).toEqual([41, ...Array.from({ length: 40 }, (_, k) => 40 - k)]);
    const seven = b.queryMemory({ limit: 100 }).entries.find((e) => e.seq === 7)!;
    expect(seven).toMatchObject({ bytesOut: 70, bytesIn: 7 });
    await b.close();
    stores.splice(stores.indexOf(b), 1);

    // Both runs, and the end record, survive the next (eager) open.
    const c = await open();
    expect(c.size).toBe(41);
    expect(c.queryMemory({ limit: 100 }).entries.find((e) => e.seq === 7)?.bytesOut).toBe(70);
    expect(c.nextSeq).toBe(42);
  });

  it('an empty directory is loaded at once; a damaged newest segment still gives a safe next seq', async () => {
    const a = await open({ lazyLoad: true });
    expect(a.isLoaded).toBe(true);
    a.append(input(1));
    await a.close();
    stores.splice(stores.indexOf(a), 1);
    await appendFile(join(histDir(), (await readdir(histDir()))[0]!), '{"seq":99,"torn');
    const b = await open({ lazyLoad: true });
    expect(b.nextSeq).toBe(2);
    await b.loaded();
    expect(b.loadReport.tornLines).toBe(1);
    expect(b.queryMemory().entries.map((e) => e.seq)).toEqual([1]);
  });
});

describe('rotation', () => {
  it('rotates by size and deletes the oldest segments past maxBytes', async () => {
    const s = await open({ segmentBytes: 4096, maxBytes: 16_384 });
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 2; i++) s.append(input(round * 2 + i));
      await s.flush();
    }
    const segs = s.segments();
    const total = segs.reduce((n, x) => n + x.size, 0);
    expect(segs.length).toBeGreaterThan(2);
    expect(total).toBeLessThanOrEqual(16_384);
    const names = (await readdir(histDir())).sort();
    expect(names).toEqual(segs.map((x) => x.name));
    // Memory holds exactly what the remaining segments hold, ending at the newest.
    await s.close();
    const again = await open({ segmentBytes: 4096, maxBytes: 16_384 });
    const onDisk = again.queryMemory({ limit: 10_000 }).entries.map((e) => e.seq);
    expect(onDisk[0]).toBe(200);
    expect(s.size).toBe(onDisk.length);
    expect(onDisk.at(-1)).toBeGreaterThan(1);
  });

  it('deletes segments older than maxAge', async () => {
    const day = 24 * 3600 * 1000;
    const s = await open({ segmentBytes: 1024, maxAgeMs: 7 * day });
    for (let i = 0; i < 10; i++) {
      s.append(input(i));
      await s.flush();
    }
    const oldSegments = s.segments().length;
    expect(oldSegments).toBeGreaterThan(1);
    clock.advance(8 * day);
    for (let i = 10; i < 20; i++) {
      s.append(input(i, { decidedAt: clock.now() }));
      await s.flush();
    }
    const seqs = s.queryMemory({ limit: 1000 }).entries.map((e) => e.seq);
    expect(Math.min(...seqs)).toBeGreaterThan(9);
    await s.close();
    // A restart after the age limit deletes what is left of the old data too.
    clock.advance(8 * day);
    const again = await open({ segmentBytes: 1024, maxAgeMs: 7 * day });
    expect(again.size).toBe(0);
    expect(await readdir(histDir())).toEqual([]);
    // Sequence numbers continue from what was seen, even though it is deleted.
    expect(again.nextSeq).toBe(21);
  });

  it('round-trips through rotation (property): reload sees the newest entries, intact', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 15 }),
        fc.integer({ min: 1500, max: 6000 }),
        async (count, batch, segmentBytes) => {
          // A directory per run: nothing is shared with other tests, even after a timeout.
          const own = await mkdtemp(join(tmpdir(), 'portcullis-history-prop-'));
          const opts = { dir: own, segmentBytes, maxBytes: segmentBytes * 3 };
          const s = await open(opts);
          const written = [];
          for (let i = 0; i < count; i++) {
            written.push(s.append(input(i)));
            if (i % batch === 0) s.markEnded(written[i]!.seq, { ended: i, bytesOut: i });
            if (i % batch === batch - 1) await s.flush();
          }
          await s.close();
          // Queried after close: the last flush may rotate and delete a segment.
          const before = s.queryMemory({ limit: 10_000 }).entries;
          const again = await open(opts);
          const after = again.queryMemory({ limit: 10_000 }).entries;
          // Nothing lost that was kept, nothing invented; the newest always survives.
          expect(after).toEqual(before);
          expect(after[0]?.seq).toBe(count);
          expect(after.map((e) => e.seq)).toEqual(
            Array.from({ length: after.length }, (_, k) => count - k),
          );
          await again.close();
          await rm(own, { recursive: true, force: true });
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);
});

describe('charts and dry runs', () => {
  it('seriesMemory counts allowed, denied, prompted and the bytes of ended flows per bucket', async () => {
    const s = await open();
    const t0 = clock.now();
    const mk = (dt: number, action: Action, reason: VerdictReason) =>
      s.append(input(1, { decidedAt: t0 + dt, action, reason }));
    const first = mk(0, 'allow', 'rule');
    mk(500, 'deny', 'prompt');
    const third = mk(1000, 'allow', 'default');
    mk(2999, 'deny', 'no-gui');
    mk(3000, 'allow', 'rule'); // outside [since, until)
    // Ended flows bring their bytes; an open one counts none yet.
    s.markEnded(first.seq, { ended: t0 + 5000, bytesOut: 100, bytesIn: 2000 });
    s.markEnded(third.seq, { ended: t0 + 5000, bytesOut: 7, bytesIn: null });
    expect(s.seriesMemory({ since: t0, until: t0 + 3000, bucketMs: 1000 })).toEqual([
      { start: t0, allowed: 1, denied: 1, prompted: 1, bytesOut: 100, bytesIn: 2000 },
      { start: t0 + 1000, allowed: 1, denied: 0, prompted: 1, bytesOut: 7, bytesIn: 0 },
      { start: t0 + 2000, allowed: 0, denied: 1, prompted: 0, bytesOut: 0, bytesIn: 0 },
    ]);
    expect(() => s.seriesMemory({ since: 0, until: 1e9, bucketMs: 1 })).toThrow(/buckets/u);
  });

  it('dryRunMemory lists what a rule would have matched, with the total', async () => {
    const s = await open();
    for (let i = 0; i < 30; i++) s.append(input(i));
    const firefox = s.dryRunMemory({ exe: '/usr/bin/firefox' }, { limit: 3 });
    expect(firefox.total).toBe(10);
    expect(firefox.entries.map((e) => e.seq)).toEqual([28, 25, 22]);
    const hosts = s.dryRunMemory({ host: '*.example.com', port: { from: 1000, to: 1009 } });
    expect(hosts.entries.map((e) => e.seq)).toEqual([9, 7, 5, 3, 1]);
    expect(s.dryRunMemory({ address: '192.0.2.0/30' }).total).toBe(4);
    expect(s.dryRunMemory({ exe: '/nothing' })).toEqual({ entries: [], total: 0 });
  });
});

describe('queries beyond the memory window (queryAll, seriesAll, dryRunAll)', () => {
  const N = 3000;
  // A small window (10 entries, trimmed in chunks of 1,024) and small segments: most
  // entries are only on disk, spread over many segments.
  const small = { memoryEntries: 10, segmentBytes: 64 * 1024, maxBytes: 64 * 1024 * 1024 };

  async function filled(): Promise<HistoryStore> {
    const s = await open(small);
    for (let i = 0; i < N; i++) {
      s.append(input(i, { decidedAt: clock.now() + i }));
      if (i % 500 === 499) await s.flush();
    }
    await s.flush();
    return s;
  }

  async function allPages(s: HistoryStore, q: HistoryQuery = {}): Promise<number[]> {
    const seqs: number[] = [];
    let before: number | undefined;
    for (;;) {
      const page = await s.queryAll({
        ...q,
        limit: 97,
        ...(before !== undefined ? { beforeSeq: before } : {}),
      });
      seqs.push(...page.entries.map((e) => e.seq));
      if (page.nextBeforeSeq === null) return seqs;
      before = page.nextBeforeSeq;
    }
  }

  it('pages through every kept entry, newest first, with filters; queryMemory() sees only memory', async () => {
    const s = await filled();
    expect(s.size).toBeLessThan(N);
    expect(s.segments().length).toBeGreaterThan(3);
    const all = await allPages(s);
    expect(all).toEqual(Array.from({ length: N }, (_, k) => N - k));
    // The same filters as query(), applied to the entries read from disk.
    const t0 = clock.now();
    const denied = await allPages(s, { action: 'deny', since: t0 + 100, until: t0 + 2000 });
    const expected = Array.from({ length: N }, (_, k) => N - 1 - k)
      .filter((i) => i % 4 === 0 && i >= 100 && i < 2000)
      .map((i) => i + 1);
    expect(denied).toEqual(expected);
    const firefox = await allPages(s, { text: 'FIREFOX' });
    expect(firefox).toHaveLength(N / 3);
    expect(s.queryMemory({ limit: 10_000 }).entries.length).toBe(s.size);
  });

  it('gives entries only on disk their end counters, also after a reopen', async () => {
    const s = await filled();
    // seq 5 left the window long ago: its end record goes to a later segment.
    expect(s.markEnded(5, { ended: clock.now() + 9, bytesOut: 55, bytesIn: 66 })).toBe(true);
    const hit = async (store: HistoryStore) =>
      (await store.queryAll({ beforeSeq: 6, limit: 1 })).entries[0];
    expect(await hit(s)).toMatchObject({ seq: 5, bytesOut: 55, bytesIn: 66 });
    await s.close();
    stores.splice(stores.indexOf(s), 1);
    const again = await open({ ...small, lazyLoad: true });
    await again.loaded();
    expect(await hit(again)).toMatchObject({ seq: 5, bytesOut: 55, bytesIn: 66 });
    expect(await allPages(again)).toHaveLength(N);
  });

  it('seriesAll and dryRunAll count the entries on disk too', async () => {
    const s = await filled();
    const t0 = clock.now();
    const q = { since: t0, until: t0 + N, bucketMs: 1000 };
    const memoryOnly = s.seriesMemory(q).reduce((n, b) => n + b.allowed + b.denied, 0);
    const all = await s.seriesAll(q);
    expect(all.reduce((n, b) => n + b.allowed + b.denied, 0)).toBe(N);
    expect(all.reduce((n, b) => n + b.denied, 0)).toBe(N / 4);
    expect(memoryOnly).toBe(s.size);
    const dry = await s.dryRunAll({ exe: '/usr/bin/firefox' }, { limit: 5 });
    expect(dry.total).toBe(N / 3);
    expect(dry.entries.map((e) => e.seq)).toEqual([2998, 2995, 2992, 2989, 2986]);
    expect(s.dryRunMemory({ exe: '/usr/bin/firefox' }).total).toBeLessThan(N / 3);
  });

  it('keeps the segments read for paging a minute after their last use, then drops them', async () => {
    const s = await filled();
    const first = async () => (await s.queryAll({ beforeSeq: 2, limit: 1 })).entries[0]?.seq;
    expect(await first()).toBe(1);
    // Removed behind the store's back: the cached copy still answers...
    await rm(join(histDir(), s.segments()[0]!.name));
    clock.advance(59_000);
    expect(await first()).toBe(1);
    // ...until a minute without use has passed.
    clock.advance(60_000);
    expect(await first()).toBeUndefined();
  });
});
