/**
 * Periodic Stats for the UI: decisions counted by the interceptor, the queue's kernel
 * counters (/proc/net/netfilter/nfnetlink_queue of the helper's namespace) and the
 * conntrack table's size, limit and per-CPU trouble counters (over ctnetlink).
 */
import type { CpuStats, GlobalStats } from '../conntrack/index.js';
import type { QueueProcStats } from '../nfqueue/types.js';
import type { Stats } from '../protocol/model.js';
import type { Logger } from './log.js';
import type { EventPublisher } from './ports.js';

export interface DecisionCounts {
  allowed: number;
  denied: number;
  prompted: number;
}

/** Where the numbers come from; each is one call so that tests can give fixed values. */
export interface StatsSources {
  decisions(): DecisionCounts;
  /** The queue's /proc line; undefined when the queue is not bound. */
  queue(): Promise<QueueProcStats | undefined>;
  conntrackGlobal(): Promise<GlobalStats>;
  conntrackCpus(): Promise<CpuStats[]>;
}

/** Sums the per-CPU counters a user cares about (absent counters count 0). */
export function sumCpuStats(cpus: readonly CpuStats[]): {
  insertFailed: number;
  drop: number;
  earlyDrop: number;
} {
  let insertFailed = 0;
  let drop = 0;
  let earlyDrop = 0;
  for (const c of cpus) {
    insertFailed += c.insertFailed ?? 0;
    drop += c.drop ?? 0;
    earlyDrop += c.earlyDrop ?? 0;
  }
  return { insertFailed, drop, earlyDrop };
}

/** One Stats sample from its parts. */
export function buildStats(
  time: number,
  decisions: DecisionCounts,
  queue: QueueProcStats | undefined,
  global: GlobalStats,
  cpus: readonly CpuStats[],
): Stats {
  const sums = sumCpuStats(cpus);
  return {
    time,
    allowed: decisions.allowed,
    denied: decisions.denied,
    prompted: decisions.prompted,
    queueDropped: queue?.queueDropped ?? 0,
    queueUserDropped: queue?.userDropped ?? 0,
    queueTotal: queue?.queueTotal ?? 0,
    conntrackCount: global.entries,
    conntrackMax: global.maxEntries ?? 0,
    conntrackInsertFailed: sums.insertFailed,
    conntrackDrop: sums.drop,
    conntrackEarlyDrop: sums.earlyDrop,
    conntrackCpus: cpus.slice(0, 1024).map((c) => ({
      cpu: c.cpu,
      found: c.found ?? 0,
      insert: c.insert ?? 0,
      insertFailed: c.insertFailed ?? 0,
      drop: c.drop ?? 0,
      earlyDrop: c.earlyDrop ?? 0,
      invalid: c.invalid ?? 0,
      error: c.error ?? 0,
      searchRestart: c.searchRestart ?? 0,
    })),
  };
}

const COMPONENT = 'stats';

export class StatsCollector {
  private timer: NodeJS.Timeout | undefined;
  private last: Stats | undefined;
  private running = false;

  constructor(
    private readonly sources: StatsSources,
    private readonly options: { intervalMs: number; publisher?: EventPublisher; log: Logger },
  ) {}

  /** The latest sample (undefined before the first). */
  get latest(): Stats | undefined {
    return this.last;
  }

  /** Takes one sample now. */
  async collect(): Promise<Stats> {
    const [queue, global, cpus] = await Promise.all([
      this.sources.queue(),
      this.sources.conntrackGlobal(),
      this.sources.conntrackCpus(),
    ]);
    this.last = buildStats(Date.now(), this.sources.decisions(), queue, global, cpus);
    return this.last;
  }

  /** Samples every intervalMs and publishes on topic 'stats'; a failed sample is logged and skipped. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return; // a slow sample is never stacked
      this.running = true;
      this.collect()
        .then((s) => this.options.publisher?.publish('stats', s))
        .catch((error: unknown) =>
          this.options.log.warn(COMPONENT, `sample failed: ${(error as Error).message}`),
        )
        .finally(() => (this.running = false));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
