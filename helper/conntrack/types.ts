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
