import { describe, expect, it } from 'vitest';
import {
  pageSize,
  scrollToReveal,
  visibleRange,
} from '../../../src-renderer/src/lib/virtual-window.js';

describe('virtual window', () => {
  it('renders the rows in view plus overscan, positioned at the first one', () => {
    // rows 0..9 are 28px; viewport 100px at scrollTop 280 shows rows 10..13
    expect(visibleRange(280, 100, 28, 100_000, 2)).toEqual({
      start: 8,
      end: 16,
      offset: 8 * 28,
      height: 100_000 * 28,
    });
  });

  it('clamps at both ends', () => {
    expect(visibleRange(0, 280, 28, 5, 3)).toEqual({ start: 0, end: 5, offset: 0, height: 140 });
    // scrollTop past the end (the list shrank): show the last page
    const r = visibleRange(1e9, 280, 28, 1000, 0);
    expect(r.end).toBe(1000);
    expect(r.start).toBe(990);
    expect(visibleRange(-50, 280, 28, 1000, 0).start).toBe(0);
  });

  it('is empty for an empty list or a hidden viewport', () => {
    expect(visibleRange(0, 500, 28, 0)).toEqual({ start: 0, end: 0, offset: 0, height: 0 });
    expect(visibleRange(0, 0, 28, 10).end).toBe(0);
  });

  it('never renders more than a viewport plus overscan, wherever it scrolls', () => {
    for (let top = 0; top < 100_000 * 28; top += 7919 * 13) {
      const r = visibleRange(top, 900, 28, 100_000, 4);
      expect(r.end - r.start).toBeLessThanOrEqual(Math.ceil(900 / 28) + 1 + 8);
      expect(r.start * 28).toBeLessThanOrEqual(top);
      expect(r.end * 28).toBeGreaterThanOrEqual(Math.min(top + 900, 100_000 * 28));
    }
  });

  it('scrolls as little as possible to reveal a row', () => {
    expect(scrollToReveal(5, 0, 280, 28)).toBe(0); // already visible
    expect(scrollToReveal(20, 0, 280, 28)).toBe(21 * 28 - 280); // below: bottom-align
    expect(scrollToReveal(2, 280, 280, 28)).toBe(56); // above: top-align
    expect(pageSize(280, 28)).toBe(9);
    expect(pageSize(10, 28)).toBe(1);
  });
});
