import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evictOldest, setNewest } from '../../../helper/common/bounded-map.js';

/** The plain way: one entry at a time from a fresh iterator, down to the same target. */
function reference<K, V>(m: Map<K, V>, k: K, v: V, max: number): void {
  m.delete(k);
  m.set(k, v);
  if (m.size <= max) return;
  const target = max - Math.floor(max / 16);
  while (m.size > target) m.delete(m.keys().next().value!);
}

describe('setNewest', () => {
  it('keeps the newest `max` entries of a small map; re-setting a key makes it the newest', () => {
    const m = new Map<string, number>();
    setNewest(m, 'a', 1, 3);
    setNewest(m, 'b', 2, 3);
    setNewest(m, 'c', 3, 3);
    setNewest(m, 'a', 10, 3); // a is the newest now; b the oldest
    setNewest(m, 'd', 4, 3);
    expect([...m]).toEqual([
      ['c', 3],
      ['a', 10],
      ['d', 4],
    ]);
  });

  it('shrinks a map that is already over a smaller bound', () => {
    const m = new Map([
      [1, 'x'],
      [2, 'y'],
      [3, 'z'],
    ]);
    setNewest(m, 4, 'w', 2);
    expect([...m.keys()]).toEqual([3, 4]);
  });

  it('over a bound of 16 or more, drops the oldest sixteenth at once', () => {
    const m = new Map<number, number>();
    for (let i = 0; i < 160; i++) setNewest(m, i, i, 160);
    expect(m.size).toBe(160);
    setNewest(m, 160, 160, 160);
    expect(m.size).toBe(150);
    expect([...m.keys()][0]).toBe(11);
    expect(evictOldest(m, 150)).toBe(0);
    expect(evictOldest(m, 100)).toBe(56); // down to 100 - 6
    expect([...m.keys()][0]).toBe(67);
  });

  it('property: the same entries in the same order as the plain eviction, through deletes, clears and changing bounds', () => {
    const op = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.record({
          kind: fc.constant('set' as const),
          key: fc.nat(60),
          max: fc.integer({ min: 0, max: 40 }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(60) }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const ours = new Map<number, number>();
        const theirs = new Map<number, number>();
        ops.forEach((o, i) => {
          if (o.kind === 'set') {
            setNewest(ours, o.key, i, o.max);
            reference(theirs, o.key, i, o.max);
            expect(ours.size).toBeLessThanOrEqual(Math.max(o.max, 0));
          } else if (o.kind === 'delete') {
            ours.delete(o.key);
            theirs.delete(o.key);
          } else {
            ours.clear();
            theirs.clear();
          }
          expect([...ours]).toEqual([...theirs]);
        });
      }),
      { numRuns: 500 },
    );
  });

  it('matches the plain eviction at a bound large enough for V8 to compact the table', () => {
    const ours = new Map<number, number>();
    const theirs = new Map<number, number>();
    const max = 3_000;
    const run = (m: Map<number, number>, set: typeof setNewest) => {
      for (let i = 0; i < 20_000; i++) {
        set(m, i, i, max);
        if (i % 7 === 0) set(m, i - 3, i, max); // re-set: the newest again
        if (i % 11 === 0) m.delete(i - 1_000);
      }
    };
    run(ours, setNewest);
    run(theirs, reference);
    expect(ours.size).toBeLessThanOrEqual(max);
    expect([...ours]).toEqual([...theirs]);
  });

  it('holds no memory for what it evicted or what others deleted (an idle iterator would keep every replaced table)', () => {
    // In a fresh node with gc exposed: a map that reached its bound once, then lives below it
    // while entries come and go (the history's open flows after a burst).
    const module = fileURLToPath(
      new URL('../../../dist/helper/common/bounded-map.js', import.meta.url),
    );
    const source = `
      const { setNewest } = await import(${JSON.stringify(module)});
      const m = new Map();
      const max = 10000;
      let next = 0;
      for (; next < max + 10; next++) setNewest(m, 'k' + next, { v: 'x'.repeat(100) + next }, max);
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let round = 0; round < 60; round++) {
        for (const k of [...m.keys()].slice(0, 5000)) m.delete(k);
        for (let i = 0; i < 4999; i++, next++) setNewest(m, 'k' + next, { v: 'x'.repeat(100) + next }, max);
      }
      gc();
      // m is used after the measurement: a map the script no longer needs could be collected
      // with whatever it holds, and the measurement would miss the leak.
      process.stdout.write(JSON.stringify({ grown: process.memoryUsage().heapUsed - before, size: m.size }));`;
    const { grown, size } = JSON.parse(
      execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', source], {
        encoding: 'utf8',
      }),
    ) as { grown: number; size: number };
    expect(size).toBeGreaterThan(9_000); // the map is alive and full at the end
    // 10,000 live entries are about 2 MB; the leak this guards against grew ~70 MB here.
    expect(grown).toBeLessThan(8e6);
  });
});
