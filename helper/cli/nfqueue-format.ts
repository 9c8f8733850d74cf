/**
 * What `portcullis nfqueue watch` prints for a queued packet: a summary
 * object (the `--json` schema, docs/nfqueue.md) and the text line made from
 * it. Pure: the packet's attributes in, strings out.
 */
import * as Q from '../nfqueue/constants.js';
import type { QueueProcStats } from '../nfqueue/types.js';
import {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  parsePacket,
  type ParsedPacket,
} from '../packet/parse.js';
import { tcpFlagsText } from '../packet/tcp.js';

/** The attributes the summary reads; an NfQueuePacket has all of them. */
export interface QueuedPacketView {
  readonly queueNumber: number;
  readonly family: number;
  readonly id: number;
  readonly hook: number;
  readonly mark?: number | undefined;
  readonly timestamp?: { readonly ms: number } | undefined;
  readonly indev?: number | undefined;
  readonly outdev?: number | undefined;
  readonly physindev?: number | undefined;
  readonly physoutdev?: number | undefined;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly capLen?: number | undefined;
  /** Read once, inside the packet callback (it is a zero-copy view). */
  readonly payload?: Uint8Array | undefined;
}

/** One `nfqueue watch --json` line. Keys are in this order; optional keys
 * are absent (never null) when they do not apply. */
export interface PacketSummary {
  /** ISO 8601, UTC, millisecond precision. */
  time: string;
  /** 'kernel': NFQA_TIMESTAMP (skb->tstamp); 'received': when this process read the packet. */
  timeSource: 'kernel' | 'received';
  queue: number;
  id: number;
  /** 'ipv4', 'ipv6', 'bridge', ... or the NFPROTO number as a string. */
  family: string;
  /** 'PRE_ROUTING', 'LOCAL_IN', 'FORWARD', 'LOCAL_OUT', 'POST_ROUTING', 'INGRESS', or the number as a string. */
  hook: string;
  indev?: number;
  outdev?: number;
  physindev?: number;
  physoutdev?: number;
  mark?: number;
  uid?: number;
  gid?: number;
  /** 'tcp', 'udp', 'icmp', 'icmpv6', or the protocol number as a string. */
  protocol?: string;
  protocolNumber?: number;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  /** Bytes of the whole packet from the IP header (NFQA_CAP_LEN when the copy was cut). */
  length: number;
  /** TCP/UDP data bytes present in the copy. */
  payloadLength?: number;
  /** TCP flag names, in header bit order (FIN SYN RST PSH ACK URG ECE CWR AE). */
  tcpFlags?: string[];
  icmpType?: number;
  icmpCode?: number;
  icmpName?: string;
  /** A later IP fragment (no transport header). */
  fragment?: true;
  /** The copy range cut the packet. */
  truncated?: true;
  /** Why the packet could not be parsed (the other layer fields are then absent). */
  error?: string;
  verdict: 'accept' | 'drop';
}

const HOOKS: Record<number, string> = {
  [Q.NF_INET_PRE_ROUTING]: 'PRE_ROUTING',
  [Q.NF_INET_LOCAL_IN]: 'LOCAL_IN',
  [Q.NF_INET_FORWARD]: 'FORWARD',
  [Q.NF_INET_LOCAL_OUT]: 'LOCAL_OUT',
  [Q.NF_INET_POST_ROUTING]: 'POST_ROUTING',
  [Q.NF_INET_INGRESS]: 'INGRESS',
};

const FAMILIES: Record<number, string> = {
  [Q.NFPROTO_INET]: 'inet',
  [Q.NFPROTO_IPV4]: 'ipv4',
  [Q.NFPROTO_ARP]: 'arp',
  [Q.NFPROTO_NETDEV]: 'netdev',
  [Q.NFPROTO_BRIDGE]: 'bridge',
  [Q.NFPROTO_IPV6]: 'ipv6',
};

const PROTOCOLS: Record<number, string> = {
  [IPPROTO_TCP]: 'tcp',
  [IPPROTO_UDP]: 'udp',
  [IPPROTO_ICMP]: 'icmp',
  [IPPROTO_ICMPV6]: 'icmpv6',
};

function hookName(hook: number): string {
  return HOOKS[hook] ?? String(hook);
}

function familyName(family: number): string {
  return FAMILIES[family] ?? String(family);
}

/**
 * The summary of a packet. Reads `payload` once, so call it inside the
 * packet callback. `receivedAt` (ms since the epoch) is used when the kernel
 * sent no timestamp (locally generated packets have none).
 */
export function summarizeQueued(
  p: QueuedPacketView,
  verdict: 'accept' | 'drop',
  receivedAt: number,
): PacketSummary {
  const payload = p.payload;
  const kernelTime = p.timestamp?.ms;
  const s: PacketSummary = {
    time: new Date(kernelTime ?? receivedAt).toISOString(),
    timeSource: kernelTime !== undefined ? 'kernel' : 'received',
    queue: p.queueNumber,
    id: p.id,
    family: familyName(p.family),
    hook: hookName(p.hook),
  } as PacketSummary;
  if (p.indev !== undefined) s.indev = p.indev;
  if (p.outdev !== undefined) s.outdev = p.outdev;
  if (p.physindev !== undefined) s.physindev = p.physindev;
  if (p.physoutdev !== undefined) s.physoutdev = p.physoutdev;
  if (p.mark !== undefined) s.mark = p.mark;
  if (p.uid !== undefined) s.uid = p.uid;
  if (p.gid !== undefined) s.gid = p.gid;

  let parsed: ParsedPacket | undefined;
  let error: string | undefined;
  if (payload === undefined || payload.byteLength === 0) error = 'no payload copied';
  else {
    try {
      parsed = parsePacket(payload);
    } catch (e) {
      error = (e as Error).message;
    }
  }
  if (parsed) {
    s.protocol = PROTOCOLS[parsed.protocol] ?? String(parsed.protocol);
    s.protocolNumber = parsed.protocol;
    s.src = parsed.ip.src;
    s.dst = parsed.ip.dst;
    const l4 = parsed.tcp ?? parsed.udp;
    if (l4) {
      s.sport = l4.srcPort;
      s.dport = l4.dstPort;
    }
  }
  s.length = p.capLen ?? payload?.byteLength ?? 0;
  if (parsed) {
    const l4 = parsed.tcp ?? parsed.udp;
    if (l4) s.payloadLength = l4.payloadLength;
    if (parsed.tcp) s.tcpFlags = tcpFlagsText(parsed.tcp.flagBits).split(',').filter(Boolean);
    const icmp = parsed.icmp ?? parsed.icmpv6;
    if (icmp) {
      s.icmpType = icmp.type;
      s.icmpCode = icmp.code;
      s.icmpName = icmp.name;
    }
    if (parsed.ip.laterFragment) s.fragment = true;
    if (parsed.ip.truncated || (p.capLen !== undefined && p.capLen > (payload?.byteLength ?? 0)))
      s.truncated = true;
  }
  if (error !== undefined) s.error = error;
  s.verdict = verdict;
  return s;
}

export function packetJsonLine(s: PacketSummary): string {
  return JSON.stringify(s) + '\n';
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** HH:MM:SS.mmm in local time, like tcpdump. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function endpoint(addr: string | undefined, port: number | undefined): string {
  const a = addr ?? '?';
  if (port === undefined) return a;
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

/**
 * The text line:
 * `12:34:56.789 q=7 id=12 LOCAL_OUT in=- out=1 mark=0x11 uid=0 gid=0 udp 127.0.0.1:40000 -> 127.0.0.1:9000 length=33 payload=5 accept`
 */
export function packetLine(s: PacketSummary): string {
  const parts = [
    clockTime(s.time),
    `q=${s.queue}`,
    `id=${s.id}`,
    s.hook,
    `in=${s.indev ?? '-'}`,
    `out=${s.outdev ?? '-'}`,
  ];
  if (s.physindev !== undefined) parts.push(`physin=${s.physindev}`);
  if (s.physoutdev !== undefined) parts.push(`physout=${s.physoutdev}`);
  if (s.mark !== undefined) parts.push(`mark=0x${s.mark.toString(16)}`);
  if (s.uid !== undefined) parts.push(`uid=${s.uid}`);
  if (s.gid !== undefined) parts.push(`gid=${s.gid}`);
  if (s.error !== undefined) {
    parts.push(`malformed (${s.error})`);
  } else {
    const known = s.protocol !== undefined && s.protocol !== String(s.protocolNumber);
    parts.push(known ? s.protocol! : `proto=${s.protocolNumber}`);
    parts.push(endpoint(s.src, s.sport), '->', endpoint(s.dst, s.dport));
    if (s.tcpFlags) parts.push(`flags=${s.tcpFlags.length ? s.tcpFlags.join(',') : '-'}`);
    if (s.icmpName !== undefined) parts.push(`${s.icmpName} code=${s.icmpCode}`);
    if (s.fragment) parts.push('fragment');
  }
  parts.push(`length=${s.length}`);
  if (s.payloadLength !== undefined) parts.push(`payload=${s.payloadLength}`);
  if (s.truncated) parts.push('truncated');
  parts.push(s.verdict);
  return parts.join(' ') + '\n';
}

// ---------------------------------------------------------------------------
// nfqueue stats

const COPY_MODES: Record<number, string> = {
  [Q.NFQNL_COPY_NONE]: 'none',
  [Q.NFQNL_COPY_META]: 'meta',
  [Q.NFQNL_COPY_PACKET]: 'packet',
};

function copyModeName(mode: number): string {
  return COPY_MODES[mode] ?? String(mode);
}

/** One `nfqueue stats --json` line. */
export function queueStatsJsonLine(s: QueueProcStats): string {
  return (
    JSON.stringify({
      queue: s.queue,
      portId: s.portId,
      queueTotal: s.queueTotal,
      copyMode: copyModeName(s.copyMode),
      copyRange: s.copyRange,
      queueDropped: s.queueDropped,
      userDropped: s.userDropped,
      lastId: s.lastId,
    }) + '\n'
  );
}

const STATS_COLUMNS: [string, (s: QueueProcStats) => string][] = [
  ['queue', (s) => String(s.queue)],
  ['port_id', (s) => String(s.portId)],
  ['queue_total', (s) => String(s.queueTotal)],
  ['copy_mode', (s) => copyModeName(s.copyMode)],
  ['copy_range', (s) => String(s.copyRange)],
  ['queue_dropped', (s) => String(s.queueDropped)],
  ['user_dropped', (s) => String(s.userDropped)],
  ['last_id', (s) => String(s.lastId)],
];

/** The /proc table with a header, right-aligned columns. */
export function formatQueueStatsTable(rows: readonly QueueProcStats[]): string {
  const cells = rows.map((r) => STATS_COLUMNS.map(([, f]) => f(r)));
  const widths = STATS_COLUMNS.map(([h], i) =>
    Math.max(h.length, ...cells.map((c) => c[i]!.length)),
  );
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === 3 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n';
  return line(STATS_COLUMNS.map(([h]) => h)) + cells.map(line).join('');
}
