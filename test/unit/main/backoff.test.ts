import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../src-main/common/backoff.js';

describe('Backoff', () => {
  it('grows exponentially up to the cap, with jitter below the ceiling', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([99, 199, 399, 799, 999]);
    b.reset();
    expect(b.next()).toBe(99);
  });

  it('never returns less than 1 ms and rejects nonsense settings', () => {
    expect(new Backoff({ random: () => 0 }).next()).toBe(1);
    expect(() => new Backoff({ initialMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow(RangeError);
  });
});
