/**
 * Activity: verdict series from the helper's history, live samples of the
 * helper's stats (conntrack table size, queue drops), and the history search.
 */
import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import type {
  Action,
  HistoryEntry,
  HistorySeries,
  PortcullisApi,
  Stats,
  Unsubscribe,
} from '../../../src-main/common/api.js';

/** Samples kept for the live charts: 10 minutes at one sample a second. */
const STATS_CAPACITY = 600;

/** Parallel arrays, as uPlot takes them. Times in seconds (uPlot's unit). */
export interface StatsSamples {
  time: number[];
  conntrackCount: number[];
  /** Packets the kernel dropped from the queue since the previous sample. */
  queueDrops: number[];
  /**
   * Conntrack trouble per second on each CPU (packets found invalid, entries dropped or
   * early-dropped, failed inserts, errors, search restarts): one array per entry of
   * `cpus`. The kernel no longer counts inserts or lookups per CPU (always 0 since 5.x).
   */
  cpuTrouble: number[][];
  /** The CPU numbers of `cpuTrouble`'s arrays (empty before a helper that reports them). */
  cpus: number[];
}

export function emptySamples(): StatsSamples {
  return { time: [], conntrackCount: [], queueDrops: [], cpuTrouble: [], cpus: [] };
}

type CpuStats = NonNullable<Stats['conntrackCpus']>[number];

/** The counters that mean trouble, summed. */
function trouble(c: CpuStats): number {
  return c.invalid + c.drop + c.earlyDrop + c.insertFailed + c.error + c.searchRestart;
}

/** Trouble per second on each CPU between two samples (0 at the first, or after a reset). */
function troubleRates(previous: Stats | null, stats: Stats): { cpus: number[]; rates: number[] } {
  const now = stats.conntrackCpus ?? [];
  const before = new Map((previous?.conntrackCpus ?? []).map((c) => [c.cpu, trouble(c)]));
  const seconds = previous === null ? 0 : (stats.time - previous.time) / 1000;
  return {
    cpus: now.map((c) => c.cpu),
    rates: now.map((c) => {
      const was = before.get(c.cpu);
      if (was === undefined || !(seconds > 0)) return 0;
      return Math.round((Math.max(0, trouble(c) - was) / seconds) * 10) / 10;
    }),
  };
}

/** Appends a sample, dropping the oldest past capacity; returns a new object for reactivity. */
export function appendSample(
  samples: StatsSamples,
  previous: Stats | null,
  stats: Stats,
  capacity = STATS_CAPACITY,
): StatsSamples {
  const dropped = (s: Stats) => s.queueDropped + s.queueUserDropped;
  // A helper restart resets its counters: never chart a negative drop count.
  const drops = previous === null ? 0 : Math.max(0, dropped(stats) - dropped(previous));
  const cut = Math.max(0, samples.time.length + 1 - capacity);
  const { cpus, rates } = troubleRates(previous, stats);
  const kept = samples.time.length - cut;
  // Another set of CPUs (a helper on another machine, a CPU brought online): the older
  // samples have no value for them.
  const same = cpus.length === samples.cpus.length && cpus.every((c, i) => c === samples.cpus[i]);
  const older = same
    ? samples.cpuTrouble.map((a) => a.slice(cut))
    : cpus.map(() => new Array<number>(kept).fill(0));
  return {
    time: [...samples.time.slice(cut), stats.time / 1000],
    conntrackCount: [...samples.conntrackCount.slice(cut), stats.conntrackCount],
    queueDrops: [...samples.queueDrops.slice(cut), drops],
    cpuTrouble: older.map((a, i) => [...a, rates[i]!]),
    cpus,
  };
}

export const RANGES = [
  { id: '15m', label: 'Last 15 minutes', ms: 15 * 60_000, bucketMs: 15_000 },
  { id: '1h', label: 'Last hour', ms: 3_600_000, bucketMs: 60_000 },
  { id: '24h', label: 'Last 24 hours', ms: 86_400_000, bucketMs: 15 * 60_000 },
  { id: '7d', label: 'Last 7 days', ms: 7 * 86_400_000, bucketMs: 3_600_000 },
] as const;
export type RangeId = (typeof RANGES)[number]['id'];

export interface HistoryFilter {
  text: string;
  action: Action | null;
  /** Epoch ms or null (unbounded). */
  from: number | null;
  to: number | null;
}

const PAGE = 200;

export const useActivityStore = defineStore('activity', () => {
  const stats = shallowRef<Stats | null>(null);
  const samples = shallowRef<StatsSamples>(emptySamples());
  const range = ref<RangeId>('1h');
  const series = shallowRef<HistorySeries | null>(null);
  const history = shallowRef<HistoryEntry[]>([]);
  const historyMore = ref(false);
  const historyFilter = ref<HistoryFilter>({ text: '', action: null, from: null, to: null });
  const error = ref<string | null>(null);
  let api: PortcullisApi | null = null;

  function onStats(next: Stats): void {
    samples.value = appendSample(samples.value, stats.value, next);
    stats.value = next;
  }

  async function loadSeries(now = Date.now()): Promise<void> {
    if (!api) return;
    const r = RANGES.find((x) => x.id === range.value) ?? RANGES[1];
    // Align buckets so a refresh does not shift every bar.
    const to = Math.ceil(now / r.bucketMs) * r.bucketMs;
    try {
      series.value = await api.historySeries({ from: to - r.ms, to, bucketMs: r.bucketMs });
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  /** The first page of history for the filter, or the next page when `more`. */
  async function loadHistory(more = false): Promise<void> {
    if (!api) return;
    const f = historyFilter.value;
    const last = history.value[history.value.length - 1];
    try {
      const page = await api.queryHistory({
        text: f.text,
        action: f.action,
        from: f.from,
        to: f.to,
        beforeSeq: more && last ? last.seq : null,
        limit: PAGE,
      });
      history.value = more ? [...history.value, ...page.entries] : page.entries;
      historyMore.value = page.more;
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  function attach(next: PortcullisApi): Unsubscribe {
    api = next;
    const stop = next.onStats(onStats);
    return () => {
      stop();
      api = null;
    };
  }

  return {
    stats,
    samples,
    range,
    series,
    history,
    historyMore,
    historyFilter,
    error,
    onStats,
    loadSeries,
    loadHistory,
    attach,
  };
});
