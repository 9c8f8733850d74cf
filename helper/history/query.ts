/** The filters and counters of the history's queries, for entries from memory and from disk alike. */
import type { HistoryEntry, RuleMatch } from '../protocol/model.js';
import { compileMatch, matchesView, requestView } from '../decisions/matcher.js';
import { HistoryError } from './errors.js';
import type { DryRunQuery, HistoryQuery, SeriesBucket, SeriesQuery } from './types.js';

const MAX_LIMIT = 10_000;
const MAX_BUCKETS = 10_000;

/** A query's page size: default 100, between 1 and 10,000. */
export function pageLimit(q: HistoryQuery): number {
  return Math.min(Math.max(q.limit ?? 100, 1), MAX_LIMIT);
}

/** A dry run's entry limit: default 100, between 0 (count only) and 10,000. */
export function dryRunLimit(q: DryRunQuery): number {
  return Math.min(Math.max(q.limit ?? 100, 0), MAX_LIMIT);
}

/** The filters of a HistoryQuery (`needle`: its text, lower-cased, or ''). */
export function queryMatches(e: HistoryEntry, q: HistoryQuery, needle: string): boolean {
  if (q.since !== undefined && e.decidedAt < q.since) return false;
  if (q.until !== undefined && e.decidedAt >= q.until) return false;
  if (q.action !== undefined && e.action !== q.action) return false;
  return needle === '' || textOf(e).includes(needle);
}

function textOf(e: HistoryEntry): string {
  const r = e.request;
  const p = r.process;
  // The command line as a shell shows it, so that `--text "-m http.server"` matches.
  const cmdline = p?.cmdline.join(' ');
  return [p?.exe, p?.comm, cmdline, p?.appId, p?.user, p?.unit, r.host, r.src, r.dst]
    .filter((x): x is string => typeof x === 'string')
    .join('\n')
    .toLowerCase();
}

/** The empty buckets of a series; [] for an empty or inverted range. */
export function emptyBuckets(q: SeriesQuery): SeriesBucket[] {
  if (!(q.bucketMs > 0) || !(q.until > q.since)) return [];
  const n = Math.ceil((q.until - q.since) / q.bucketMs);
  if (n > MAX_BUCKETS) {
    throw new HistoryError('INVALID_QUERY', `series: ${n} buckets (at most ${MAX_BUCKETS})`);
  }
  return Array.from({ length: n }, (_, k) => ({
    start: q.since + k * q.bucketMs,
    allowed: 0,
    denied: 0,
    prompted: 0,
    bytesOut: 0,
    bytesIn: 0,
  }));
}

/** Counts an entry in its bucket when it falls in the series' range. */
export function countInSeries(buckets: SeriesBucket[], q: SeriesQuery, e: HistoryEntry): void {
  if (e.decidedAt < q.since || e.decidedAt >= q.until) return;
  const b = buckets[Math.floor((e.decidedAt - q.since) / q.bucketMs)]!;
  if (e.action === 'allow') b.allowed++;
  else b.denied++;
  if (e.reason === 'prompt' || e.reason === 'default') b.prompted++;
  b.bytesOut += e.bytesOut ?? 0;
  b.bytesIn += e.bytesIn ?? 0;
}

/** A dry run's test of one entry: in the time range and matched by the rule. */
export function dryRunMatcher(match: RuleMatch, q: DryRunQuery): (e: HistoryEntry) => boolean {
  const compiled = compileMatch(match);
  return (e) => {
    if (q.since !== undefined && e.decidedAt < q.since) return false;
    if (q.until !== undefined && e.decidedAt >= q.until) return false;
    return matchesView(compiled, requestView(e.request));
  };
}
