/**
 * Which desktop notifications to show for new prompts (pure). A burst of
 * connections must not become a burst of notifications: at most one per
 * `minIntervalMs`; prompts that arrive in between are summed up in the next
 * one ("Firefox and 4 more are waiting"). A prompt is announced once.
 */
export interface PromptSummary {
  id: number | string;
  /** Program name, or a path, for the text. */
  app: string;
  /** host:port or address:port. */
  destination: string;
}

export interface Notice {
  title: string;
  body: string;
}

export class PromptNotices {
  private readonly seen = new Set<PromptSummary['id']>();
  private queued: PromptSummary[] = [];
  private last = -Infinity;

  constructor(
    private readonly minIntervalMs = 10_000,
    private readonly maxRemembered = 10_000,
  ) {}

  /** New or changed prompts arrive; returns the notice to show now, if any. */
  offer(prompts: readonly PromptSummary[], now: number): Notice | null {
    for (const p of prompts) {
      if (this.seen.has(p.id)) continue;
      this.seen.add(p.id);
      this.queued.push(p);
    }
    if (this.seen.size > this.maxRemembered) {
      // Forget the oldest ids (Set keeps insertion order).
      const drop = this.seen.size - this.maxRemembered;
      let i = 0;
      for (const id of this.seen) {
        if (i++ >= drop) break;
        this.seen.delete(id);
      }
    }
    return this.flush(now);
  }

  /** A prompt was answered or expired: no notice for it any more. */
  resolved(id: PromptSummary['id']): void {
    this.queued = this.queued.filter((p) => p.id !== id);
  }

  /** When the caller's timer fires; a notice if some are still waiting. */
  flush(now: number): Notice | null {
    if (this.queued.length === 0 || now - this.last < this.minIntervalMs) return null;
    this.last = now;
    const [first, ...rest] = this.queued;
    this.queued = [];
    if (!first) return null;
    if (rest.length === 0) {
      return { title: `${first.app} wants to connect`, body: first.destination };
    }
    return {
      title: 'Connections are waiting for your answer',
      body: `${first.app} (${first.destination}) and ${rest.length} more`,
    };
  }

  /** Milliseconds until flush() may show the queued prompts; null when none. */
  nextFlushIn(now: number): number | null {
    if (this.queued.length === 0) return null;
    return Math.max(0, this.last + this.minIntervalMs - now);
  }
}

/** The tray tooltip: pending count first, then the helper's state. */
export function trayTooltip(pending: number, helperLine: string): string {
  const prompts =
    pending === 0
      ? 'no connection waiting'
      : pending === 1
        ? '1 connection waiting'
        : `${pending} connections waiting`;
  return `Portcullis: ${prompts}\n${helperLine}`;
}
