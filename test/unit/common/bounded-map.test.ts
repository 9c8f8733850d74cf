import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { setNewest } from '../../../helper/common/bounded-map.js';

describe('setNewest', () => {
  it('keeps the newest `max` entries; re-setting a key makes it the newest', () => {
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

  it('property: matches evicting with a fresh iterator, through deletes, clears and changing bounds', () => {
    // The reference: what setNewest did before it kept one iterator per map.
    const reference = (m: Map<number, number>, k: number, v: number, max: number): void => {
      m.delete(k);
      m.set(k, v);
      while (m.size > max) m.delete(m.keys().next().value!);
    };
    const op = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.record({
          kind: fc.constant('set' as const),
          key: fc.nat(30),
          max: fc.integer({ min: 0, max: 12 }),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(30) }),
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

  it('keeps evicting oldest-first at a bound large enough for the table to be compacted', () => {
    const ours = new Map<number, number>();
    const theirs = new Map<number, number>();
    const max = 3_000;
    const step = (m: Map<number, number>, set: typeof setNewest) => {
      for (let i = 0; i < 20_000; i++) {
        set(m, i, i, max);
        if (i % 7 === 0) set(m, i - 3, i, max); // re-set: the newest again
        if (i % 11 === 0) m.delete(i - 1_000);
      }
    };
    step(ours, setNewest);
    step(theirs, (m, k, v, bound) => {
      m.delete(k);
      m.set(k, v);
      while (m.size > bound) m.delete(m.keys().next().value!);
    });
    expect(ours.size).toBe(max);
    expect([...ours]).toEqual([...theirs]);
    expect([...ours.keys()].slice(-6)).toEqual([19_994, 19_995, 19_997, 19_998, 19_999, 19_996]);
  });
});
