/** Human-readable tables of rules and history entries. */
import type { Duration, HistoryEntry, Rule, RuleMatch } from '../protocol/model.js';

/** Aligns rows under a header; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function formatMatch(m: RuleMatch): string {
  const parts: string[] = [];
  if (m.exe !== undefined) parts.push(`exe=${m.exe}`);
  if (m.appId !== undefined) parts.push(`app=${m.appId}`);
  if (m.unit !== undefined) parts.push(`unit=${m.unit}`);
  if (m.uid !== undefined) parts.push(`uid=${m.uid}`);
  if (m.host !== undefined) parts.push(`host=${m.host}`);
  if (m.address !== undefined) parts.push(`addr=${m.address}`);
  if (m.port !== undefined) {
    parts.push(`port=${m.port.from === m.port.to ? m.port.from : `${m.port.from}-${m.port.to}`}`);
  }
  if (m.protocol !== undefined) parts.push(`proto=${m.protocol}`);
  if (m.direction !== undefined) parts.push(m.direction);
  return parts.length ? parts.join(' ') : '(anything)';
}

export function formatDuration(d: Duration, expires: number | null): string {
  switch (d.kind) {
    case 'minutes':
      return expires === null ? `${d.minutes}m` : `until ${new Date(expires).toISOString()}`;
    case 'seconds':
      return expires === null ? `${d.seconds}s` : `until ${new Date(expires).toISOString()}`;
    case 'process':
      return `process ${d.pid}`;
    default:
      return d.kind;
  }
}

function time(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

export function formatRules(rules: readonly Rule[]): string {
  return table(
    ['ID', 'ON', 'ACTION', 'DURATION', 'HITS', 'LAST HIT', 'MATCH'],
    rules.map((r) => [
      r.id,
      r.enabled ? 'yes' : 'no',
      r.denyWith === 'drop' ? 'drop' : r.action,
      formatDuration(r.duration, r.expires),
      String(r.hits),
      time(r.lastHit),
      formatMatch(r.match) + (r.note ? `  # ${r.note}` : ''),
    ]),
  );
}

function endpoint(address: string, port: number | null): string {
  if (port === null) return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function formatHistory(entries: readonly HistoryEntry[]): string {
  return table(
    ['TIME', 'ACTION', 'REASON', 'PROTO', 'PROCESS', 'USER', 'DESTINATION'],
    entries.map((e) => {
      const r = e.request;
      const p = r.process;
      const dest = endpoint(r.dst, r.dport);
      return [
        time(e.decidedAt),
        e.action,
        e.reason,
        r.protocol,
        p ? `${p.exe ?? p.comm}[${p.pid}]` : '-',
        p?.user ?? (r.uid === null ? '-' : String(r.uid)),
        r.host ? `${r.host} (${dest})` : dest,
      ];
    }),
  );
}
