/**
 * At most one log line per key and window: a flood of failed handshakes from
 * one uid must not flood the journal too (journald's own rate limit would
 * then drop the lines that matter). The first occurrence is logged at once;
 * later ones in the window are counted and the count goes with the next line
 * after it. The server's metrics keep the exact totals.
 */
export class LogThrottle {
  private readonly keys = new Map<string, { until: number; suppressed: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** null: stay quiet; else log, mentioning this many left out since the last line. */
  take(key: string): number | null {
    const t = this.now();
    const seen = this.keys.get(key);
    if (seen && t < seen.until) {
      seen.suppressed++;
      return null;
    }
    if (this.keys.size >= 1024) {
      for (const [k, v] of this.keys) if (t >= v.until) this.keys.delete(k);
    }
    this.keys.set(key, { until: t + this.windowMs, suppressed: 0 });
    return seen?.suppressed ?? 0;
  }
}
