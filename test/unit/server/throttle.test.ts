import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../../../helper/server/throttle.js';

describe('LogThrottle', () => {
  it('lets the first line of a key through, counts the rest of its window, reports them with the next', () => {
    let now = 0;
    const t = new LogThrottle(60_000, () => now);
    expect(t.take('bad-token:1000')).toBe(0);
    expect(t.take('bad-token:1000')).toBeNull();
    expect(t.take('bad-token:1000')).toBeNull();
    expect(t.take('bad-token:1001')).toBe(0); // another uid has its own window
    now = 59_999;
    expect(t.take('bad-token:1000')).toBeNull();
    now = 60_000;
    expect(t.take('bad-token:1000')).toBe(3);
    expect(t.take('bad-token:1000')).toBeNull();
    now = 200_000;
    expect(t.take('bad-token:1000')).toBe(1);
  });
});
