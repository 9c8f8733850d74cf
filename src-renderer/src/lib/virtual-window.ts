/**
 * Windowing math for fixed-height rows: which rows to render for a scroll
 * position, and where to put them. Pure so it is tested without a browser.
 */

export interface WindowRange {
  /** First row index rendered (inclusive). */
  start: number;
  /** One past the last row index rendered. */
  end: number;
  /** translateY of the first rendered row, in px. */
  offset: number;
  /** Height of all rows together, in px (the scrollable body). */
  height: number;
}

/**
 * Rows intersecting [scrollTop, scrollTop + viewport), plus `overscan` rows on
 * each side so a fast scroll does not show blank space before the next frame.
 */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  count: number,
  overscan = 4,
): WindowRange {
  const height = count * rowHeight;
  if (count === 0 || rowHeight <= 0 || viewportHeight <= 0) {
    return { start: 0, end: 0, offset: 0, height: Math.max(0, height) };
  }
  // The browser may report a scrollTop beyond the content after the list shrank.
  const top = Math.min(Math.max(0, scrollTop), Math.max(0, height - viewportHeight));
  const first = Math.floor(top / rowHeight);
  const last = Math.ceil((top + viewportHeight) / rowHeight);
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, last + overscan);
  return { start, end, offset: start * rowHeight, height };
}

/** The scrollTop that brings row `index` fully into view, moving as little as possible. */
export function scrollToReveal(
  index: number,
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
): number {
  const top = index * rowHeight;
  const bottom = top + rowHeight;
  if (top < scrollTop) return top;
  if (bottom > scrollTop + viewportHeight) return Math.max(0, bottom - viewportHeight);
  return scrollTop;
}

/** Rows per page for PageUp/PageDown. */
export function pageSize(viewportHeight: number, rowHeight: number): number {
  return Math.max(1, Math.floor(viewportHeight / rowHeight) - 1);
}
