import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lowerBound } from '../../../helper/history/entries.js';

describe('lowerBound', () => {
  it('property: the first index whose seq is >= the one asked, with and without gaps', () => {
    const ascending = fc
      .tuple(
        fc.nat(1_000),
        fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 5 })), { maxLength: 60 }),
      )
      .map(([first, steps]) => {
        const seqs = [first];
        for (const s of steps) seqs.push(seqs[seqs.length - 1]! + s);
        return seqs.map((seq) => ({ seq }));
      });
    fc.assert(
      fc.property(ascending, fc.integer({ min: -5, max: 1_400 }), (entries, seq) => {
        const linear = entries.findIndex((e) => e.seq >= seq);
        expect(lowerBound(entries, seq)).toBe(linear === -1 ? entries.length : linear);
      }),
      { numRuns: 2_000 },
    );
    expect(lowerBound([], 3)).toBe(0);
  });
});
