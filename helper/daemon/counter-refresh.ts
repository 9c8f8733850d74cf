/**
 * Keeps the flow table's counters and start times current. ctnetlink sends byte/packet
 * counters and timestamps in dumps and destroy events only, never in new/update events
 * (measured: `conntrack -E` with nf_conntrack_acct=1 shows none), so the mirror would
 * know them only for the flows of its first dump. A periodic resync (a dump diffed
 * against the mirror, docs/conntrack.md) updates them; each changed flow goes out as an
 * ordinary `flows` update.
 *
 * A dump of a big table is not free: the interval adapts so that the dumps take at most
 * `maxShare` of the time (a 200 ms dump of 100,000 entries runs every 4 s at 5%), never
 * more often than `minIntervalMs` nor less often than `maxIntervalMs`.
 */
import type { Logger } from './log.js';

export interface Resyncable {
  resync(): Promise<unknown>;
}

export interface CounterRefreshOptions {
  log: Logger;
  /** Default 2000 ms. */
  minIntervalMs?: number;
  /** Default 30,000 ms. */
  maxIntervalMs?: number;
  /** Largest share of wall time spent dumping, 0..1. Default 0.05. */
  maxShare?: number;
  /** Test seam. */
  now?: () => number;
}

/** The next delay after a dump that took `tookMs`. */
export function nextRefreshDelay(
  tookMs: number,
  o: { minIntervalMs: number; maxIntervalMs: number; maxShare: number },
): number {
  const wanted = tookMs / o.maxShare;
  return Math.round(Math.min(o.maxIntervalMs, Math.max(o.minIntervalMs, wanted)));
}

export class CounterRefresh {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly limits: { minIntervalMs: number; maxIntervalMs: number; maxShare: number };
  private readonly now: () => number;
  /** Refreshes done (tests and debugging). */
  runs = 0;

  constructor(
    private readonly target: Resyncable,
    private readonly options: CounterRefreshOptions,
  ) {
    this.limits = {
      minIntervalMs: options.minIntervalMs ?? 2000,
      maxIntervalMs: options.maxIntervalMs ?? 30_000,
      maxShare: options.maxShare ?? 0.05,
    };
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(this.limits.minIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), delay);
    // Never what keeps the helper alive.
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    const started = this.now();
    try {
      await this.target.resync();
      this.runs++;
    } catch (error) {
      if (this.stopped) return;
      this.options.log.warn('flows', `counter refresh: ${(error as Error).message}`);
    }
    this.schedule(nextRefreshDelay(this.now() - started, this.limits));
  }
}
