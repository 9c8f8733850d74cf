import type { RawAttribute } from '../netlink/attributes.js';
import type { DccpState, SctpState, StatusFlag, TcpState } from './constants.js';

export type Family = 'ipv4' | 'ipv6';

/** One direction of a connection (CTA_TUPLE_ORIG / CTA_TUPLE_REPLY / CTA_TUPLE_MASTER). */
export interface Tuple {
  /** Addresses in canonical text form ("192.0.2.1", "2001:db8::1"). */
  src: string;
  dst: string;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, 132 sctp, 33 dccp, 136 udplite). */
  proto: number;
  srcPort?: number;
  dstPort?: number;
  /** ICMP / ICMPv6 type, code and id. */
  icmpType?: number;
  icmpCode?: number;
  icmpId?: number;
  /** CTA_TUPLE_ZONE: a zone that applies to this direction only. */
  zone?: number;
}

export interface TcpInfo {
  state: TcpState | `UNKNOWN_${number}`;
  stateNumber: number;
  wscaleOrig?: number;
  wscaleReply?: number;
  /** struct nf_ct_tcp_flags: flags and mask, per direction. */
  flagsOrig?: { flags: number; mask: number };
  flagsReply?: { flags: number; mask: number };
}

export interface SctpInfo {
  state: SctpState | `UNKNOWN_${number}`;
  stateNumber: number;
  vtagOrig?: number;
  vtagReply?: number;
}

export interface DccpInfo {
  state: DccpState | `UNKNOWN_${number}`;
  stateNumber: number;
  role?: number;
  handshakeSeq?: bigint;
}

export interface Counters {
  packets: bigint;
  bytes: bigint;
}

export interface SeqAdjust {
  correctionPos: number;
  offsetBefore: number;
  offsetAfter: number;
}

/** NAT applied at create time: an address range and optional port range. */
export interface NatSpec {
  minIp?: string;
  maxIp?: string;
  minPort?: number;
  maxPort?: number;
}

export interface Synproxy {
  isn: number;
  its: number;
  tsoff: number;
}

/** One conntrack entry with every attribute the kernel sent. */
export interface Flow {
  family: Family;
  orig: Tuple;
  reply: Tuple;
  /** Raw IPS_* status bits; `statusFlags` has them by name. */
  status: number;
  statusFlags: readonly StatusFlag[];
  /** Seconds left before the entry expires. */
  timeout?: number;
  mark?: number;
  /** CTA_ZONE: the entry's zone (both directions). */
  zone?: number;
  id?: number;
  use?: number;
  tcp?: TcpInfo;
  sctp?: SctpInfo;
  dccp?: DccpInfo;
  countersOrig?: Counters;
  countersReply?: Counters;
  /** CTA_TIMESTAMP, nanoseconds (CLOCK_REALTIME) when nf_conntrack_timestamp is on. */
  timestampStart?: bigint;
  timestampStop?: bigint;
  /** CTA_TIMESTAMP_EVENT (Linux 6.14+): when the event was generated, ns. */
  timestampEvent?: bigint;
  /** 128-bit connlabel bitmap, host endian as the kernel stores it. */
  labels?: Uint8Array;
  helper?: { name: string; info?: Uint8Array };
  secctx?: string;
  secmark?: number;
  natSrc?: NatSpec;
  natDst?: NatSpec;
  seqAdjOrig?: SeqAdjust;
  seqAdjReply?: SeqAdjust;
  master?: Tuple;
  synproxy?: Synproxy;
  /** Attributes this library does not know: kept, never a crash. */
  unknown?: RawAttribute[];
}

export type ConntrackEventType = 'new' | 'update' | 'destroy';

export interface ConntrackEvent {
  type: ConntrackEventType;
  flow: Flow;
}

/** Kernel-side filters for list/flush/deleteWhere, and an optional predicate. */
export interface FlowFilter {
  /** One family; both when absent. */
  family?: Family;
  /** Entries with (mark & markMask) == mark; markMask defaults to 0xffffffff. */
  mark?: number;
  markMask?: number;
  /** Entries with (status & statusMask) == status; statusMask defaults to status. */
  status?: number | readonly StatusFlag[];
  statusMask?: number | readonly StatusFlag[];
  /** Matched in user space: the kernel ignores CTA_ZONE in dumps. */
  zone?: number;
  /** Fields of the original / reply tuple to match (CTA_FILTER). */
  orig?: Partial<Tuple>;
  reply?: Partial<Tuple>;
  /** Applied in user space after the kernel's filters. */
  where?: (flow: Flow) => boolean;
}

export interface ListOptions extends FlowFilter {
  signal?: AbortSignal;
  /** The main table, or entries being torn down / not yet confirmed. */
  table?: 'conntrack' | 'dying' | 'unconfirmed';
  /** Read and zero the counters (IPCTNL_MSG_CT_GET_CTRZERO). */
  zeroCounters?: boolean;
}

/** What identifies one entry: a tuple of either direction, and its zone. */
export interface FlowKey {
  orig?: Tuple;
  reply?: Tuple;
  zone?: number;
  /** CTA_ID: when given, the kernel checks it matches. */
  id?: number;
  family?: Family;
}

export interface CreateSpec {
  orig: Tuple;
  /** Defaults to the inverse of orig (no NAT). */
  reply?: Tuple;
  /** Seconds; required by the kernel. */
  timeout: number;
  mark?: number;
  labels?: Uint8Array | readonly number[];
  zone?: number;
  status?: number | readonly StatusFlag[];
  tcpState?: TcpState;
  /** SCTP state; the kernel needs both verification tags with it (default 0). */
  sctpState?: SctpState;
  sctpVtagOrig?: number;
  sctpVtagReply?: number;
  /** DCCP state and role (0 client, 1 server), sent as CTA_PROTOINFO_DCCP. */
  dccpState?: DccpState;
  dccpRole?: number;
  /** NAT can only be set at create. */
  natSrc?: NatSpec;
  natDst?: NatSpec;
  helper?: string;
}

export interface UpdateSpec extends FlowKey {
  /** New mark, applied as (old & ~markMask) ^ mark (markMask defaults to all bits). */
  mark?: number;
  markMask?: number;
  /** Labels, applied as (old & ~labelsMask) ^ labels. */
  labels?: Uint8Array | readonly number[];
  labelsMask?: Uint8Array | readonly number[];
  timeout?: number;
  /** The whole new status (IPS_CONFIRMED is added). The kernel refuses to
   * clear SEEN_REPLY or ASSURED (EBUSY): to add a flag, pass the entry's
   * current flags with it, as `portcullis conntrack update --status` does. */
  status?: number | readonly StatusFlag[];
  tcpState?: TcpState;
}
