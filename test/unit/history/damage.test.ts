import fc from 'fast-check';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../helper/daemon/log.js';
import {
  HistoryStore,
  longestInOrder,
  type HistoryInput,
  type HistoryStoreOptions,
} from '../../../helper/history/index.js';
import { ManualClock, proc, req } from '../decisions/fixtures.js';

let dir: string;
let clock: ManualClock;
let logLines: string[];
const stores: HistoryStore[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-history-damage-'));
  clock = new ManualClock(1_700_000_000_000);
  logLines = [];
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function open(over: Partial<HistoryStoreOptions> = {}): Promise<HistoryStore> {
  const log = createLogger({ write: (line) => logLines.push(line) });
  const s = await HistoryStore.open({ dir, clock, flushIntervalMs: 100, log, ...over });
  stores.push(s);
  return s;
}

async function closeAll(): Promise<void> {
  for (const s of stores.splice(0)) await s.close();
}

function input(i: number): HistoryInput {
  return {
    request: req({ dport: 1000 + i, dst: `192.0.2.${i % 250}`, process: proc({ user: 'alice' }) }),
    action: i % 4 === 0 ? 'deny' : 'allow',
    reason: 'rule',
    ruleId: null,
    decidedAt: clock.now() + i,
  };
}

const histDir = (): string => join(dir, 'history');

/** Every entry's seq and port through search() (memory and disk), newest first. */
async function everything(s: HistoryStore): Promise<{ seq: number; port: number | null }[]> {
  const out: { seq: number; port: number | null }[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await s.queryAll({
      limit: 7,
      ...(before !== undefined ? { beforeSeq: before } : {}),
    });
    out.push(...page.entries.map((e) => ({ seq: e.seq, port: e.request.dport })));
    if (page.nextBeforeSeq === null) return out;
    before = page.nextBeforeSeq;
  }
}

const all80 = Array.from({ length: 80 }, (_, k) => ({ seq: 80 - k, port: 1000 + 79 - k }));

/** The log's warnings about history damage, as key=value maps. */
function damageWarnings(): Record<string, string>[] {
  return logLines
    .filter((l) => / warn history: /u.test(l))
    .map((l) =>
      Object.fromEntries([...l.matchAll(/ (\w+)=("[^"]*"|\S+)/gu)].map((m) => [m[1]!, m[2]!])),
    );
}

describe('damaged history lines', () => {
  /**
   * 80 entries in one segment, then damage: a garbage line after entry 20, a line whose
   * seq was raised to 75 (entry 10's content) after entry 10, a torn last line.
   */
  async function damagedSegment(): Promise<{ file: string; offsets: number[] }> {
    const a = await open();
    for (let i = 0; i < 80; i++) a.append(input(i));
    await closeAll();
    const [name] = await readdir(histDir());
    const file = join(histDir(), name!);
    const lines = (await readFile(file, 'utf8')).split('\n').slice(0, -1);
    expect(lines).toHaveLength(80);
    const raised = JSON.stringify({ ...JSON.parse(lines[9]!), seq: 75 });
    const out = [
      ...lines.slice(0, 10),
      raised,
      ...lines.slice(10, 20),
      'garbage{',
      ...lines.slice(20),
    ];
    const text = `${out.join('\n')}\n{"seq":81,"request":{"sr`;
    await writeFile(file, text);
    const offsetOf = (k: number): number =>
      Buffer.byteLength(
        out
          .slice(0, k)
          .map((l) => `${l}\n`)
          .join(''),
      );
    return {
      file,
      offsets: [offsetOf(10), offsetOf(21), Buffer.byteLength(`${out.join('\n')}\n`)],
    };
  }

  it('keeps all 80 valid entries queryable and logs file, offset and count (eager open)', async () => {
    const { file, offsets } = await damagedSegment();
    const s = await open();
    expect(await everything(s)).toEqual(all80);
    expect(s.queryMemory({ limit: 100 }).entries).toHaveLength(80);
    expect(s.loadReport).toMatchObject({ entries: 80, skippedLines: 3, tornLines: 1 });
    // A flow's end finds its entry by seq: the order is intact.
    expect(s.markEnded(75, { ended: clock.now() + 500, bytesOut: 7 })).toBe(true);
    expect((await s.queryAll({ beforeSeq: 76, limit: 1 })).entries[0]).toMatchObject({
      seq: 75,
      bytesOut: 7,
      request: { dport: 1074 },
    });
    expect(s.nextSeq).toBe(81);
    const [w, ...more] = damageWarnings();
    expect(more).toEqual([]);
    expect(w).toMatchObject({ file, offset: String(offsets[0]), count: '3' });
    expect(w!.offsets).toBe(offsets.join(','));
  });

  it('keeps all 80 valid entries after a lazy open too', async () => {
    const { file } = await damagedSegment();
    const s = await open({ lazyLoad: true });
    const fresh = s.append(input(80));
    expect(fresh.seq).toBe(81);
    await s.loaded();
    expect(await everything(s)).toEqual([{ seq: 81, port: 1080 }, ...all80]);
    expect(damageWarnings()).toEqual([expect.objectContaining({ file, count: '3' })]);
  });

  it('a raised seq at the end of a segment does not hide the next segments; a repeated seq is dropped', async () => {
    const small = { segmentBytes: 4096, memoryEntries: 10 };
    const a = await open(small);
    for (let i = 0; i < 80; i++) {
      a.append(input(i));
      await a.flush();
    }
    await closeAll();
    const names = (await readdir(histDir())).sort();
    expect(names.length).toBeGreaterThan(3);
    const first = join(histDir(), names[0]!);
    const last = join(histDir(), names[names.length - 1]!);
    const firstText = await readFile(first, 'utf8');
    const one = JSON.parse(firstText.split('\n')[0]!) as { seq: number };
    await writeFile(first, `${firstText}${JSON.stringify({ ...one, seq: 1_000_000 })}\n`);
    const lastText = await readFile(last, 'utf8');
    await writeFile(last, `${lastText}${JSON.stringify({ ...one, seq: 1 })}\n`);
    for (const lazyLoad of [false, true]) {
      logLines = [];
      const s = await open({ ...small, lazyLoad });
      await s.loaded();
      expect(await everything(s)).toEqual(all80);
      expect(damageWarnings().map((w) => [w.file, w.count])).toEqual([
        [first, '1'],
        [last, '1'],
      ]);
      await closeAll();
    }
  });
});

describe('longestInOrder', () => {
  it('keeps the longest strictly increasing run inside the bounds', () => {
    expect(longestInOrder([1, 2, 75, 3, 4, 5], 0, Infinity)).toEqual([
      true,
      true,
      false,
      true,
      true,
      true,
    ]);
    expect(longestInOrder([1, 2, 3, 1, 4], 0, Infinity)).toEqual([true, true, true, false, true]);
    expect(longestInOrder([5, 6, 7], 5, 7)).toEqual([false, true, false]);
    expect(longestInOrder([], 0, 10)).toEqual([]);
  });

  it('property: one damaged seq costs at most its own line; what is kept is strictly increasing', () => {
    const damagedRun = fc
      .tuple(fc.integer({ min: 1, max: 80 }), fc.nat(), fc.integer({ min: -5, max: 10_000 }))
      .map(([n, at, value]) => {
        const seqs = Array.from({ length: n }, (_, k) => k + 1);
        seqs[at % n] = value;
        return seqs;
      });
    fc.assert(
      fc.property(damagedRun, (seqs) => {
        const keep = longestInOrder(seqs, 0, Infinity);
        const kept = seqs.filter((_, i) => keep[i]);
        expect(kept.length).toBeGreaterThanOrEqual(seqs.length - 1);
        for (let i = 1; i < kept.length; i++) expect(kept[i]).toBeGreaterThan(kept[i - 1]!);
        expect(kept.every((s) => s > 0)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});
