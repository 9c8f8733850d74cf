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
});
