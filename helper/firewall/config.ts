import { FirewallError } from './errors.js';

/**
 * Which bits of the packet mark and the connmark Portcullis owns. A flow's connmark
 * `& mask` is 0 (undecided), `accepted`, `denied` (refused: rejected outbound, so the
 * program learns at once) or `dropped` (denied silently); a packet mark `& exempt` ≠ 0
 * marks the helper's own traffic (set with SO_MARK). Other bits are never read or written.
 */
export interface MarkLayout {
  mask: number;
  accepted: number;
  denied: number;
  dropped: number;
  exempt: number;
}

export const DEFAULT_MARKS: Readonly<MarkLayout> = Object.freeze({
  mask: 0x3,
  accepted: 0x1,
  denied: 0x2,
  dropped: 0x3,
  exempt: 0x4,
});

/** The NFLOG group the helper's DNS snooper reads unless configured otherwise. */
export const DEFAULT_DNS_LOG_GROUP = 2053;
/** The `--nflog-prefix` of the DNS rules: it names them in `iptables -S` and in each
 * logged packet (NFULA_PREFIX). */
export const DEFAULT_DNS_LOG_PREFIX = 'portcullis-dns';

/**
 * Copies of DNS responses for the helper's DnsSnooper (helper/dns), sent to an NFLOG
 * group: UDP and TCP from source port 53 that conntrack sees as the reply of a flow
 * this machine started, arriving from the network (INPUT, not loopback) or answered by
 * a local resolver to a local program (OUTPUT to loopback); each response once.
 */
export interface DnsLogConfig {
  /** NFLOG group 0..65535. */
  group: number;
  /** `--nflog-prefix`: letters, digits, `_` and `-`, at most 63. Default 'portcullis-dns'. */
  prefix?: string;
  /** Also log mDNS (UDP from port 5353, inbound from the network; no conntrack check,
   * as mDNS answers are multicast). Default false. */
  mdns?: boolean;
}

/** What the rules queue to, and how. */
export interface FirewallConfig {
  /** One queue (`--queue-num N`) or a range (`--queue-balance A:B`). */
  queue: number | { from: number; to: number };
  /** Accept when no program is bound to the queue (`--queue-bypass`, fail-open). Default true. */
  bypass?: boolean;
  /** Also queue new inbound connections (INPUT). Default false. */
  inbound?: boolean;
  /** Install IPv6 rules too (when ip6tables / inet exists). Default true. */
  ipv6?: boolean;
  /**
   * What an outbound packet with the denied mark gets: 'reject' (default) answers TCP
   * with a reset and other protocols with ICMP administratively prohibited, so the
   * program fails at once; 'drop' discards it, and the program waits for its timeout.
   * Inbound denials and the `dropped` mark are always dropped.
   */
  denyAction?: 'drop' | 'reject';
  /** Mark bits; missing fields take DEFAULT_MARKS (`dropped`: `accepted | denied`). */
  marks?: Partial<MarkLayout>;
  /**
   * The helper's own traffic is never queued: by packet mark (`marks.exempt`, the
   * default) and/or by socket owner uid (`-m owner --uid-owner`, output only).
   * `{ mark: false }` disables the mark exemption.
   */
  exempt?: { mark?: boolean; uid?: number };
  /** Log DNS responses to an NFLOG group (docs/dns.md). Default off here; the helper
   * turns it on (helperFirewallConfig). */
  dnsLog?: DnsLogConfig | false;
}

/** A config with every default applied and checked. */
export interface ResolvedConfig {
  queue: { from: number; to: number };
  bypass: boolean;
  inbound: boolean;
  ipv6: boolean;
  denyAction: 'drop' | 'reject';
  marks: MarkLayout;
  exemptMark: boolean;
  exemptUid: number | undefined;
  dnsLog: Required<DnsLogConfig> | undefined;
}

function invalid(message: string): never {
  throw new FirewallError('INVALID_CONFIG', message);
}

function u16(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) {
    invalid(`${name} must be an integer 0..65535, got ${String(v)}`);
  }
  return v;
}

function u32(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    invalid(`${name} must be an integer 0..0xffffffff, got ${String(v)}`);
  }
  return v;
}

export function resolveConfig(config: FirewallConfig): ResolvedConfig {
  const queue =
    typeof config.queue === 'number'
      ? { from: u16('queue', config.queue), to: config.queue }
      : { from: u16('queue.from', config.queue.from), to: u16('queue.to', config.queue.to) };
  if (queue.to < queue.from) invalid(`queue range ${queue.from}:${queue.to} is empty`);
  if (config.denyAction !== undefined && !['drop', 'reject'].includes(config.denyAction)) {
    invalid(`denyAction must be 'drop' or 'reject', got ${JSON.stringify(config.denyAction)}`);
  }
  const given = { ...DEFAULT_MARKS, ...config.marks };
  // A layout that moves accepted/denied but names no dropped value gets their union,
  // which is 0x3 for the default layout.
  const marks = {
    ...given,
    dropped: config.marks?.dropped ?? (given.accepted | given.denied) >>> 0,
  };
  for (const k of ['mask', 'accepted', 'denied', 'dropped', 'exempt'] as const) {
    u32(`marks.${k}`, marks[k]);
  }
  const { mask, accepted, denied, dropped, exempt } = marks;
  if (mask === 0) invalid('marks.mask must not be 0');
  for (const [k, v] of [
    ['accepted', accepted],
    ['denied', denied],
    ['dropped', dropped],
  ] as const) {
    if (v === 0 || (v & ~mask) >>> 0 !== 0) {
      invalid(`marks.${k} (0x${v.toString(16)}) must be non-zero and inside marks.mask`);
    }
  }
  if (accepted === denied) invalid('marks.accepted and marks.denied must differ');
  if (dropped === accepted || dropped === denied) {
    invalid(
      `marks.dropped (0x${dropped.toString(16)}) must differ from marks.accepted and marks.denied`,
    );
  }
  const exemptMark = config.exempt?.mark ?? true;
  if (exemptMark && (exempt === 0 || (exempt & mask) >>> 0 !== 0)) {
    invalid('marks.exempt must be non-zero and outside marks.mask');
  }
  const uid = config.exempt?.uid;
  if (uid !== undefined) u32('exempt.uid', uid);
  let dnsLog: Required<DnsLogConfig> | undefined;
  if (config.dnsLog) {
    const prefix = config.dnsLog.prefix ?? DEFAULT_DNS_LOG_PREFIX;
    // Only characters iptables prints unquoted: the installed rules are compared as text.
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(prefix)) {
      invalid(`dnsLog.prefix must be 1..63 of [A-Za-z0-9_-], got ${JSON.stringify(prefix)}`);
    }
    dnsLog = {
      group: u16('dnsLog.group', config.dnsLog.group),
      prefix,
      mdns: !!config.dnsLog.mdns,
    };
  }
  return {
    queue,
    bypass: config.bypass ?? true,
    inbound: config.inbound ?? false,
    ipv6: config.ipv6 ?? true,
    denyAction: config.denyAction ?? 'reject',
    marks,
    exemptMark,
    exemptUid: uid,
    dnsLog,
  };
}

/** The helper's defaults over `config`: DNS responses logged to DEFAULT_DNS_LOG_GROUP
 * unless `dnsLog` is given (or `false`). */
export function helperFirewallConfig(config: FirewallConfig): FirewallConfig {
  return { ...config, dnsLog: config.dnsLog ?? { group: DEFAULT_DNS_LOG_GROUP } };
}

/** `0x…` as iptables prints marks. */
export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
