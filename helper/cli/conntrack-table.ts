/** The human-readable table of `portcullis conntrack list` and `get`. */
import { IPPROTO } from '../conntrack/constants.js';
import { labelBits } from '../conntrack/decode.js';
import type { Flow, Tuple } from '../conntrack/types.js';

const PROTO_NAMES = new Map<number, string>(Object.entries(IPPROTO).map(([k, v]) => [v, k]));

function host(address: string, withPort: boolean): string {
  return withPort && address.includes(':') ? `[${address}]` : address;
}

/** "src:sport -> dst:dport", or the ICMP type/code/id, or just the addresses. */
export function formatTuple(t: Tuple): string {
  if (t.srcPort !== undefined || t.dstPort !== undefined) {
    return `${host(t.src, true)}:${t.srcPort ?? '?'} -> ${host(t.dst, true)}:${t.dstPort ?? '?'}`;
  }
  let out = `${t.src} -> ${t.dst}`;
  if (t.icmpType !== undefined) out += ` type=${t.icmpType}`;
  if (t.icmpCode !== undefined) out += ` code=${t.icmpCode}`;
  if (t.icmpId !== undefined) out += ` id=${t.icmpId}`;
  if (t.zone !== undefined) out += ` zone=${t.zone}`;
  return out;
}

function state(f: Flow): string {
  return f.tcp?.state ?? f.sctp?.state ?? f.dccp?.state ?? '-';
}

/** Status flags by name; CONFIRMED (set on every listed entry) is left out. */
function flags(f: Flow): string {
  const names = f.statusFlags.filter((n) => n !== 'CONFIRMED');
  return names.length ? names.join(',') : '-';
}

function zone(f: Flow): string {
  if (f.zone !== undefined) return String(f.zone);
  if (f.orig.zone !== undefined || f.reply.zone !== undefined) {
    return `${f.orig.zone ?? '-'}/${f.reply.zone ?? '-'}`;
  }
  return '-';
}

interface Column {
  title: string;
  cell(f: Flow): string;
  /** Right-aligned (numbers). */
  right?: boolean;
}

/** Formats flows as an aligned table with a header line. Columns for
 * counters and labels appear only when some flow has them. */
export function formatFlowTable(flows: readonly Flow[]): string {
  const columns: Column[] = [
    { title: 'PROTO', cell: (f) => PROTO_NAMES.get(f.orig.proto) ?? String(f.orig.proto) },
    { title: 'STATE', cell: state },
    { title: 'ORIGINAL', cell: (f) => formatTuple(f.orig) },
    { title: 'REPLY', cell: (f) => formatTuple(f.reply) },
    { title: 'FLAGS', cell: flags },
    { title: 'MARK', cell: (f) => (f.mark === undefined ? '-' : String(f.mark)), right: true },
    { title: 'ZONE', cell: zone, right: true },
    {
      title: 'TIMEOUT',
      cell: (f) => (f.timeout === undefined ? '-' : String(f.timeout)),
      right: true,
    },
  ];
  if (flows.some((f) => f.countersOrig || f.countersReply)) {
    columns.push(
      {
        title: 'PACKETS',
        cell: (f) => `${f.countersOrig?.packets ?? '-'}/${f.countersReply?.packets ?? '-'}`,
        right: true,
      },
      {
        title: 'BYTES',
        cell: (f) => `${f.countersOrig?.bytes ?? '-'}/${f.countersReply?.bytes ?? '-'}`,
        right: true,
      },
    );
  }
  if (flows.some((f) => f.labels && labelBits(f.labels).length)) {
    columns.push({
      title: 'LABELS',
      cell: (f) => {
        const bits = f.labels ? labelBits(f.labels) : [];
        return bits.length ? bits.join(',') : '-';
      },
    });
  }
  columns.push({
    title: 'ID',
    cell: (f) => (f.id === undefined ? '-' : String(f.id)),
    right: true,
  });

  const rows = flows.map((f) => columns.map((c) => c.cell(f)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const last = i === cells.length - 1;
        if (columns[i]!.right) return cell.padStart(widths[i]!);
        return last ? cell : cell.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd() + '\n';
  return line(columns.map((c) => c.title)) + rows.map(line).join('');
}
