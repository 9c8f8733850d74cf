/**
 * The verdict loop's log of decisions: one `info` line each, up to a number a second;
 * beyond that they are counted and summed up in one line at the end of the second (at
 * thousands of connections a second, a line each costs more than the decision; the
 * history keeps every one).
 */
import type { Logger } from './log.js';
import type { DecisionRecord } from './ports.js';

export class DecisionLog {
  private windowStart = 0;
  private windowCount = 0;
  private suppressed = { allowed: 0, denied: 0 };
  private summaryTimer: NodeJS.Timeout | undefined;

  /** `perSecond`: decisions a second with a line of their own (0: only the summaries). */
  constructor(
    private readonly log: Logger,
    private readonly component: string,
    private readonly perSecond: number,
  ) {}

  /** Logs the decision, or counts it for the summary; returns whether it had its own line. */
  write(entry: DecisionRecord): boolean {
    if (this.allowed(entry.decidedAt)) {
      const r = entry.request;
      this.log.info(this.component, `${entry.action} ${r.direction} ${r.protocol}`, {
        src: r.src,
        sport: r.sport,
        dst: r.dst,
        dport: r.dport,
        host: r.host,
        uid: r.uid,
        pid: r.process?.pid,
        exe: r.process?.exe,
        reason: entry.reason,
        rule: entry.ruleId,
      });
      return true;
    }
    if (entry.action === 'allow') this.suppressed.allowed++;
    else this.suppressed.denied++;
    // The summary comes at the end of the window even when no decision follows.
    this.summaryTimer ??= setTimeout(
      () => this.flush(),
      Math.max(0, this.windowStart + 1000 - Date.now()),
    );
    this.summaryTimer.unref();
    return false;
  }

  /** One line for the decisions of the last window that had none of their own. */
  flush(): void {
    if (this.summaryTimer !== undefined) clearTimeout(this.summaryTimer);
    this.summaryTimer = undefined;
    const { allowed, denied } = this.suppressed;
    if (allowed + denied === 0) return;
    this.suppressed = { allowed: 0, denied: 0 };
    this.log.info(
      this.component,
      `${allowed + denied} more decisions not logged one by one (over ${this.perSecond}/s)`,
      { allowed, denied },
    );
  }

  /** Whether a decision at `now` may have its own line. */
  private allowed(now: number): boolean {
    if (now - this.windowStart >= 1000) {
      this.flush();
      this.windowStart = now;
      this.windowCount = 0;
    }
    return this.windowCount++ < this.perSecond;
  }
}
